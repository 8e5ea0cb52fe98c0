import { setImmediate as tick } from 'node:timers/promises';
import { expect, vi } from 'vitest';
import type { Tenantry } from '../../src/index.js';

/** The demo's customers of each tenant, sorted by name. */
export const CUSTOMERS = {
  HomeDepot: ['Albert Hall', 'Candace Jones', 'Carrie Abrahm'],
  Lowes: ['Fred Smith', 'George Holmes', 'Joan Adlon'],
} as const;

/** The two demo tenants the isolation tests interleave. */
export type DemoTenant = keyof typeof CUSTOMERS;

/** HomeDepot, Lowes, HomeDepot, … — `count` of them. */
export function alternating(count: number): DemoTenant[] {
  return Array.from({ length: count }, (_, i) => (i % 2 === 0 ? 'HomeDepot' : 'Lowes'));
}

/**
 * Runs `read` for 20 alternating tenants at once, each call yielding to the others between its
 * two reads, and checks every call saw its own tenant's customers (and only those) both times.
 */
export async function expectIsolatedReads(
  tenantry: Tenantry,
  read: () => Promise<readonly string[]>,
): Promise<void> {
  const seen = await Promise.all(
    alternating(20).map((tenant) =>
      tenantry.withTenant(tenant, async () => {
        const first = await read();
        await tick();
        const second = await read();
        return { tenant, first, second };
      }),
    ),
  );
  for (const { tenant, first, second } of seen) {
    expect({ tenant, names: first }).toEqual({ tenant, names: CUSTOMERS[tenant] });
    expect({ tenant, names: second }).toEqual({ tenant, names: CUSTOMERS[tenant] });
  }
}

/** Which tenant (by name) holds the customer row(s) named `name`, read as the operator. */
export async function ownersOf(tenantry: Tenantry, name: string): Promise<string[]> {
  const { rows } = await tenantry.operator.query<{ tenant: string }>(
    'SELECT t.name AS tenant FROM customer c JOIN tenantry.tenant t ON t.id = c.tenant_id WHERE c.name = $1 ORDER BY 1',
    [name],
  );
  return rows.map((row) => row.tenant);
}

/** Backend connections tenantry has checked out right now. */
export function connectionsInUse(tenantry: Tenantry): number {
  return tenantry.poolStats().servers.reduce((sum, server) => sum + server.inUse, 0);
}

/** Waits until every backend connection is back in tenantry's pool. */
export async function expectAllReleased(tenantry: Tenantry): Promise<void> {
  await vi.waitFor(() => expect(connectionsInUse(tenantry)).toBe(0));
}
