import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import type { EmbeddedServer } from '../../src/embedded/index.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Superuser URL of the PostgreSQL server the tests use (database `postgres`). */
    pgUrl: string;
  }
}

let server: EmbeddedServer | undefined;
let dataDir: string | undefined;

/** Starts one embedded PostgreSQL for the whole run, unless TENANTRY_TEST_DATABASE_URL is set. */
export async function setup(project: TestProject): Promise<void> {
  const external = process.env.TENANTRY_TEST_DATABASE_URL;
  if (external) {
    project.provide('pgUrl', external);
    return;
  }
  dataDir = mkdtempSync(join(tmpdir(), 'tenantry-test-'));
  chmodSync(dataDir, 0o755);
  const { startEmbedded } = await import('../../src/embedded/index.js');
  server = await startEmbedded({
    dataDir,
    port: 0,
    postgresFlags: ['-c', 'max_connections=300', '-c', 'fsync=off', '-c', 'synchronous_commit=off'],
  });
  project.provide('pgUrl', server.url);
}

export async function teardown(): Promise<void> {
  await server?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
}
