import { expect } from 'vitest';
import {
  createLogger,
  createTenantry,
  generateMasterKey,
  isTenantryError,
  type TenantIsolation,
  type Tenantry,
  type TenantryConfig,
} from '../../src/index.js';
import { isConnectionError } from '../../src/pool/index.js';
import { createTestDatabase, serverUrl, withClient } from '../helpers/db.js';
import { FaultProxy } from '../helpers/fault-proxy.js';

/** The tenants of a fault fixture: two shared (with login roles), one schema, one database. */
export const TENANTS: readonly { name: string; isolation: TenantIsolation }[] = [
  { name: 'HomeDepot', isolation: 'shared' },
  { name: 'Lowes', isolation: 'shared' },
  { name: 'Menards', isolation: 'schema' },
  { name: 'AceHardware', isolation: 'database' },
];

/** Rows each tenant owns in `note`. */
export const ROWS = 5;

/** A test database behind a fault proxy, with tenantry connected through the proxy. */
export interface FaultFixture {
  /** The direct (superuser) URL of the test database, bypassing the proxy. */
  readonly directUrl: string;
  /** The same database through the proxy. */
  readonly url: string;
  readonly proxy: FaultProxy;
  readonly tenantry: Tenantry;
  readonly masterKey: string;
  close(): Promise<void>;
}

/**
 * Creates a database with table `note (tenant_id, id, owner)` — every row carries the name of
 * the tenant that wrote it, the leak oracle — and {@link TENANTS}, each with {@link ROWS} rows
 * and a sign-on user `u@<tenant>` (password `pw`, admin). tenantry reaches PostgreSQL only
 * through the proxy: catalog, operator and tenant connections alike.
 */
export async function faultFixture(label: string, pool: TenantryConfig['pool'] = {}): Promise<FaultFixture> {
  const directUrl = await createTestDatabase(label);
  const proxy = await FaultProxy.start(serverUrl());
  const url = proxy.url(directUrl);
  const masterKey = generateMasterKey();
  const tenantry = await createTenantry({
    databaseUrl: url,
    masterKey,
    catalogPollMs: 1_000,
    ...(process.env.FAULT_LOG ? { logger: createLogger('debug') } : {}),
    pool: { budget: 12, checkoutTimeoutMs: 2_000, connectTimeoutMs: 1_500, queryTimeoutMs: 3_000, ...pool },
  });
  await withClient(directUrl, (client) =>
    client.query(
      'CREATE TABLE note (tenant_id int NOT NULL, id int NOT NULL, owner text NOT NULL, PRIMARY KEY (tenant_id, id))',
    ),
  );
  await tenantry.tables.multiTenant('public.note');
  for (const { name, isolation } of TENANTS) {
    await tenantry.tenants.create({ name, isolation, loginRole: isolation === 'shared' });
    await tenantry.withTenant(name, (db) =>
      db.query('INSERT INTO note (id, owner) SELECT g, $1 FROM generate_series(1, $2::int) g', [name, ROWS]),
    );
    await tenantry.domains.add(name, { tenant: name });
    await tenantry.users.add(`u@${name}`, { password: 'pw', permission: 'admin' });
  }
  return {
    directUrl,
    url,
    proxy,
    tenantry,
    masterKey,
    async close() {
      proxy.pass();
      await tenantry.close();
      await proxy.close();
    },
  };
}

/** Asserts every row belongs to `tenant` (the leak oracle) and that all its rows are there. */
export function expectOwn(tenant: string, rows: readonly { owner: string }[]): void {
  expect(rows.map((r) => r.owner)).toEqual(Array.from({ length: ROWS }, () => tenant));
}

/** Reads `tenant`'s notes through the library (application role and tenant setting). */
export async function readNotes(t: Tenantry, tenant: string): Promise<{ owner: string }[]> {
  const { rows } = await t.withTenant(tenant, (db) =>
    db.query<{ owner: string }>('SELECT owner FROM note ORDER BY id'),
  );
  return rows;
}

/**
 * Whether `error` is one a client may see while PostgreSQL or the path to it is failing: a
 * tenantry code saying so, a connection-level SQLSTATE, or a dead socket — never a wrong row,
 * never an internal error.
 */
export function isFaultError(error: unknown): boolean {
  if (
    isTenantryError(error, 'DATABASE_UNREACHABLE') ||
    isTenantryError(error, 'POOL_TIMEOUT') ||
    isTenantryError(error, 'CONNECTION_LOST')
  )
    return true;
  if (isConnectionError(error)) return true;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && /^(57P0[1-3]|08\d\d\d|53300)$/.test(code);
}

/** Runs `fn` and answers its error (fails when it resolves) and how long it took. */
export async function failure(fn: () => Promise<unknown>): Promise<{ error: unknown; ms: number }> {
  const started = Date.now();
  try {
    await fn();
  } catch (error) {
    return { error, ms: Date.now() - started };
  }
  throw new Error('expected a failure, but the call succeeded');
}

/** Polls `check` until it answers true (errors count as false), failing after `ms`. */
export async function eventually(check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (error) {
      last = error;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not happen within ${ms} ms (last error: ${String(last)})`);
}

/** Tenant rows, login roles, schemas and databases of the catalog agree with what exists. */
export async function expectConsistentCatalog(directUrl: string): Promise<void> {
  const { audit } = await import('../../src/index.js');
  const report = await audit(directUrl);
  expect(
    report.findings.filter((f) => f.severity === 'high'),
    'audit high findings',
  ).toEqual([]);
}
