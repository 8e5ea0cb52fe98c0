import pg from 'pg';
import { expandIncludes, type Tenant } from '../catalog/index.js';
import { withDatabase } from '../connection-url.js';
import { runtimeTables, tenantKey, type RuntimeHost } from './host.js';

/** The runtime part of a database tenant's data plane (also in dataplane/tenant-database.sql). */
const DATABASE_RUNTIME = expandIncludes(
  '-- @include runtime-tables.sql\n-- @include runtime-dataplane.sql\n',
);

/**
 * Makes sure a tenant's runtime tables exist before the runtime first touches them, once per
 * tenant and process. New tenants get them at creation (schema tenants by a catalog trigger,
 * database tenants with their data plane); this completes tenants created before catalog
 * version 18 and repairs missing tables, as the operator.
 */
export class RuntimeProvisioner {
  readonly #host: RuntimeHost;
  readonly #ready = new Map<string, Promise<void>>();

  constructor(host: RuntimeHost) {
    this.#host = host;
  }

  /** Resolves once `tenant`'s runtime tables exist. */
  ensure(tenant: Tenant): Promise<void> {
    const tables = runtimeTables(tenant);
    if (tables.placement === 'catalog') return Promise.resolve();
    const key = tenantKey(tenant);
    let ready = this.#ready.get(key);
    if (!ready) {
      ready = this.#provision(tenant).catch((error: unknown) => {
        this.#ready.delete(key);
        throw error;
      });
      this.#ready.set(key, ready);
    }
    return ready;
  }

  /** Forgets what it knows of a dropped tenant. */
  forget(tenant: Tenant): void {
    this.#ready.delete(tenantKey(tenant));
  }

  async #provision(tenant: Tenant): Promise<void> {
    const tables = runtimeTables(tenant);
    const { rows } = await this.#host
      .bookkeeping(tenant)
      .query<{ ok: boolean }>('SELECT to_regclass($1) IS NOT NULL AS ok', [tables.job]);
    if (rows[0]?.ok) return;
    const { app, maint, owner } = this.#host.roles;
    this.#host.logger.info({ tenant: tenant.name }, 'installing runtime tables');
    if (tables.placement === 'schema') {
      await this.#host.admin.query("SELECT tenantry.runtime_install($1, 'tenantry_', $2, $3, $4)", [
        tenant.schemaName,
        app,
        maint,
        owner,
      ]);
      return;
    }
    const values: Record<string, string> = {
      app: pg.escapeIdentifier(app),
      role: pg.escapeIdentifier(tenant.role ?? app),
    };
    const sql = DATABASE_RUNTIME.replace(/\{\{(\w+)\}\}/g, (whole, name: string) => values[name] ?? whole);
    const url = withDatabase(await this.#host.serverUrl(tenant.server), tenant.databaseName ?? '');
    const client = new pg.Client({ connectionString: url, application_name: 'tenantry-operator' });
    await client.connect();
    try {
      await client.query('BEGIN');
      await client.query(sql);
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      await client.end().catch(() => undefined);
    }
  }
}
