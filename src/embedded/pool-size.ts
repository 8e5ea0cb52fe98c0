import { availableParallelism } from 'node:os';

/** Application-role connections per CPU when PostgreSQL runs on this machine. */
const CONNECTIONS_PER_CPU = 4;

/**
 * The cap on the application role's pool (config `pool.sharedPoolMax`) that `tenantry serve` uses
 * with its embedded PostgreSQL: 4 connections per CPU of this machine. The server shares these
 * CPUs with tenantry, so more statements at once only make PostgreSQL switch between backends
 * whose caches have gone cold: measured with the `http` benchmark on 2 CPUs, a cap of 8 took
 * PostgreSQL from ≈ 150 to ≈ 100 µs of CPU per request (docs/scaling.md).
 */
export function colocatedPoolMax(cpus: number = availableParallelism()): number {
  return Math.max(1, cpus) * CONNECTIONS_PER_CPU;
}
