import pg from 'pg';
import { tenantFaceSchema, type Tenant } from '../catalog/index.js';
import { TenantryError } from '../errors.js';
import { longQuery } from '../pool/long-query.js';

/** Something that runs a query: a pool or a client. */
type Queryable = Pick<pg.ClientBase, 'query'>;

/**
 * Checks a tablespace name as given by a user: a non-empty identifier of at most 63 bytes that
 * is not `pg_global` (which holds only shared catalogs). Throws `TENANTRY_ERR_INVALID_ARGUMENT`.
 */
export function checkTablespaceName(name: unknown): string {
  if (typeof name !== 'string' || name === '' || Buffer.byteLength(name) > 63 || name.includes('\0')) {
    throw new TenantryError('INVALID_ARGUMENT', {
      what: 'tablespace',
      problem: `${JSON.stringify(name)} is not a tablespace name (1 to 63 bytes)`,
    });
  }
  if (name === 'pg_global') {
    throw new TenantryError('INVALID_ARGUMENT', {
      what: 'tablespace',
      problem: 'pg_global holds only shared system catalogs; pick another tablespace',
    });
  }
  return name;
}

/**
 * Throws `TENANTRY_ERR_TABLESPACE_NOT_FOUND` unless tablespace `name` exists on the server `db`
 * is connected to (registered as `server`).
 */
export async function requireTablespace(db: Queryable, name: string, server: string): Promise<void> {
  const { rowCount } = await db.query('SELECT 1 FROM pg_catalog.pg_tablespace WHERE spcname = $1', [name]);
  if (!rowCount) throw new TenantryError('TABLESPACE_NOT_FOUND', { tablespace: name, server });
}

/** Throws `TENANTRY_ERR_TABLESPACE_UNSUPPORTED` for a tenant that cannot have a tablespace. */
export function requireOwnStorage(tenant: Pick<Tenant, 'name' | 'isolation' | 'kind'>): void {
  if (tenant.kind === 'super' && tenant.isolation === 'shared') {
    throw new TenantryError('TABLESPACE_UNSUPPORTED', {
      tenant: tenant.name,
      isolation: 'super',
      problem: 'a super tenant has no data of its own',
    });
  }
  if (tenant.isolation === 'shared') {
    throw new TenantryError('TABLESPACE_UNSUPPORTED', {
      tenant: tenant.name,
      isolation: 'shared',
      problem: 'its rows live in the shared multi-tenant tables, whose tablespace all shared tenants share',
    });
  }
}

/**
 * Moves a schema tenant's tables and indexes (data schema and face schema) into `tablespace`,
 * inside the caller's transaction. Each table is locked ACCESS EXCLUSIVE while its files are
 * copied: the tenant's statements on it wait until the transaction commits. Answers how many
 * relations moved.
 */
export async function moveSchemaRelations(
  client: Queryable,
  tenant: Pick<Tenant, 'uuid' | 'schemaName'>,
  tablespace: string,
): Promise<number> {
  const schemas = [tenant.schemaName, tenantFaceSchema(tenant.uuid)].filter((s): s is string => !!s);
  const { rows } = await client.query<{ moved: number }>(
    longQuery('SELECT tenantry.move_to_tablespace($1::name[], $2) AS moved', [schemas, tablespace]),
  );
  return rows[0]?.moved ?? 0;
}

/** How {@link moveDatabase} treats the tenant database's sessions. */
export interface DatabaseMoveOptions {
  /**
   * How long sessions inside a transaction get to finish before they are ended (default 5,000
   * ms). Idle sessions are ended at once; new ones are refused for the length of the move.
   */
  readonly graceMs?: number;
  /** Closes this process's pools of the tenant (before its sessions are ended). */
  readonly closePools?: () => void;
}

/**
 * Moves a whole tenant database into `tablespace` with `ALTER DATABASE … SET TABLESPACE`, which
 * PostgreSQL runs only while nobody is connected to that database. So: new connections are
 * refused (`ALLOW_CONNECTIONS false`), this process's pools of the tenant are closed, sessions
 * in a transaction get `graceMs` to finish, every remaining session is ended, the files are
 * copied, and connections are allowed again — also when the move fails. `client` is an operator
 * connection to another database of the same server.
 */
export async function moveDatabase(
  client: Queryable,
  database: string,
  tablespace: string,
  options: DatabaseMoveOptions = {},
): Promise<void> {
  const db = pg.escapeIdentifier(database);
  const grace = Math.max(0, options.graceMs ?? 5_000);
  await client.query(`ALTER DATABASE ${db} WITH ALLOW_CONNECTIONS false`);
  try {
    options.closePools?.();
    const until = Date.now() + grace;
    for (;;) {
      const { rows } = await client.query<{ busy: number }>(
        `SELECT count(*)::int AS busy FROM pg_catalog.pg_stat_activity
         WHERE datname = $1 AND pid <> pg_backend_pid() AND backend_type = 'client backend'
           AND state IS DISTINCT FROM 'idle'`,
        [database],
      );
      if ((rows[0]?.busy ?? 0) === 0 || Date.now() >= until) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    // (waits up to 5 s for each backend to be gone)
    await client.query(
      `SELECT pg_terminate_backend(pid, 5000) FROM pg_catalog.pg_stat_activity
       WHERE datname = $1 AND pid <> pg_backend_pid()`,
      [database],
    );
    await client.query(`ALTER DATABASE ${db} SET TABLESPACE ${pg.escapeIdentifier(tablespace)}`);
  } finally {
    await client.query(`ALTER DATABASE ${db} WITH ALLOW_CONNECTIONS true`);
  }
}
