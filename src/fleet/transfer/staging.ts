import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Tenant, TenantIsolation } from '../../catalog/index.js';
import { TenantryError } from '../../errors.js';
import { IMPORT_LOCK, STAGING_PREFIX, type TransferHost } from './host.js';
import { withPlacementClient } from './placement.js';

/**
 * The tenant an import fills: created under a staging name (`tenantry-import-<hex>`), locked
 * (operator only), and renamed to its real name and made active only at the very end — so an
 * interrupted import never leaves a tenant under the name it was meant to get. The importing
 * session holds an advisory lock on the staging name; a staging tenant whose lock nobody holds
 * is a leftover of a killed import, which the next import removes.
 */
export class StagingTenant {
  readonly #host: TransferHost;
  readonly #catalog: pg.ClientBase;
  #tenant: Tenant;

  private constructor(host: TransferHost, catalog: pg.ClientBase, tenant: Tenant) {
    this.#host = host;
    this.#catalog = catalog;
    this.#tenant = tenant;
  }

  /** The tenant as created (locked, staging name). */
  get tenant(): Tenant {
    return this.#tenant;
  }

  /**
   * Creates a locked staging tenant placed as asked. `catalog` must stay open until
   * {@link activate} or {@link discard}: it holds the import's lock.
   */
  static async create(
    host: TransferHost,
    catalog: pg.ClientBase,
    placement: { isolation: TenantIsolation; server: string; loginRole: boolean },
  ): Promise<StagingTenant> {
    const name = `${STAGING_PREFIX}${randomBytes(8).toString('hex')}`;
    await catalog.query('SELECT pg_advisory_lock($1, hashtext($2))', [IMPORT_LOCK, name]);
    try {
      const created = await host.tenants.create({
        name,
        isolation: placement.isolation,
        server: placement.server,
        loginRole: placement.loginRole,
      });
      try {
        return new StagingTenant(host, catalog, await host.tenants.lock(created.id));
      } catch (error) {
        await host.tenants.drop(created.id, { force: true }).catch(() => undefined);
        throw error;
      }
    } catch (error) {
      await unlock(catalog, name);
      throw error;
    }
  }

  /** Drops the staging tenant and everything imported into it. */
  async discard(): Promise<void> {
    try {
      await this.#host.tenants.drop(this.#tenant.id, { force: true });
    } finally {
      await unlock(this.#catalog, this.#tenant.name);
    }
  }

  /**
   * Gives the tenant its real name and makes it active, in one catalog transaction (and its own
   * database's copy of the name first). Throws `TENANTRY_ERR_TENANT_EXISTS` when the name was
   * taken meanwhile (the staging tenant is left for {@link discard}).
   */
  async activate(name: string): Promise<Tenant> {
    const tenant = this.#tenant;
    if (tenant.isolation === 'database') {
      await withPlacementClient(this.#host, tenant, (c) =>
        c.query('UPDATE tenantry.tenant SET name = $2 WHERE id = $1', [tenant.id, name]),
      );
    }
    const c = this.#catalog;
    await c.query('BEGIN');
    try {
      const { rowCount } = await c.query(
        "UPDATE tenantry.tenant SET name = $2, state = 'active' WHERE id = $1 AND name = $3",
        [tenant.id, name, tenant.name],
      );
      if (rowCount !== 1) throw new TenantryError('TENANT_NOT_FOUND', { tenant: tenant.name });
      const { rows } = await c.query<{ role_name: string }>(
        `SELECT r.role_name FROM tenantry.tenant_role r JOIN pg_roles p ON p.rolname = r.role_name
         WHERE r.tenant_id = $1 ORDER BY r.role_name`,
        [tenant.id],
      );
      for (const { role_name: role } of rows) await c.query(`ALTER ROLE ${pg.escapeIdentifier(role)} LOGIN`);
      await c.query('COMMIT');
    } catch (error) {
      await c.query('ROLLBACK').catch(() => undefined);
      if (error instanceof pg.DatabaseError && error.code === '23505') {
        throw new TenantryError('TENANT_EXISTS', { tenant: name }, { cause: error });
      }
      throw error;
    }
    await unlock(c, tenant.name);
    await this.#host.catalog.reload();
    this.#tenant = await this.#host.tenants.show(tenant.id);
    return this.#tenant;
  }
}

async function unlock(catalog: pg.ClientBase, name: string): Promise<void> {
  await catalog
    .query('SELECT pg_advisory_unlock($1, hashtext($2))', [IMPORT_LOCK, name])
    .catch(() => undefined);
}

/**
 * Removes staging tenants left by imports that were killed (no session holds their lock);
 * answers their names. Imports in progress are left alone.
 */
export async function sweepStaleImports(host: TransferHost, catalog: pg.ClientBase): Promise<string[]> {
  // Exactly a staging name (the prefix and 16 hex digits): a tenant that is merely named
  // tenantry-import-… (tenantry-import-2024) is never taken for a leftover and dropped.
  const { rows } = await catalog.query<{ id: number; name: string }>(
    `SELECT id, name FROM tenantry.tenant WHERE name ~ $1 ORDER BY id`,
    [`^${STAGING_PREFIX}[0-9a-f]{16}$`],
  );
  const removed: string[] = [];
  for (const row of rows) {
    const { rows: got } = await catalog.query<{ ok: boolean }>(
      'SELECT pg_try_advisory_lock($1, hashtext($2)) AS ok',
      [IMPORT_LOCK, row.name],
    );
    if (!got[0]?.ok) continue;
    try {
      await host.tenants.drop(row.id, { force: true });
      removed.push(row.name);
    } catch (error) {
      if (!(error instanceof TenantryError && error.code === 'TENANTRY_ERR_TENANT_NOT_FOUND')) throw error;
    } finally {
      await unlock(catalog, row.name);
    }
  }
  return removed;
}
