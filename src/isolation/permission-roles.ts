import { randomBytes } from 'node:crypto';
import pg from 'pg';
import {
  inTransaction,
  tenantSearchPath,
  type CatalogRoles,
  type CredentialStore,
  type Tenant,
} from '../catalog/index.js';
import { TenantryError } from '../errors.js';
import type { Permission } from '../identity/names.js';
import type { ServerRegistry } from '../servers/index.js';
import { createDatabasePermissionRole } from './database.js';
import { createMemberRole, tenantCredentialOwner } from './provision.js';

const SUFFIX: Record<Exclude<Permission, 'admin'>, string> = { write: '_w', read: '_r' };

/**
 * The login role a tenant's statements run as under `permission`: the tenant's own role for
 * `admin`, `<role>_w` for `write`, `<role>_r` for `read`.
 */
export function permissionRoleName(adminRole: string, permission: Permission): string {
  return permission === 'admin' ? adminRole : `${adminRole}${SUFFIX[permission]}`;
}

/**
 * The credential field (under owner `tenant:<id>`) that holds the password of the tenant's
 * role for `permission`: `password`, `password-write` or `password-read`. Dropping a tenant
 * removes every field of its owner.
 */
export function permissionPasswordField(permission: Permission): string {
  return permission === 'admin' ? 'password' : `password-${permission}`;
}

/** What {@link PermissionRoles} needs. */
export interface PermissionRolesOptions {
  /** The operator's pool on the catalog database. */
  readonly pool: pg.Pool;
  readonly roles: CatalogRoles;
  readonly credentials: CredentialStore;
  readonly servers: ServerRegistry;
}

/**
 * A tenant's `write` and `read` login roles, created on first use: members of the tenant's own
 * (admin) role, each with its own random password sealed in the catalog, registered in
 * `tenantry.tenant_role` with their permission so that `tenantry.current_tenant()` resolves them.
 * PostgreSQL enforces what they may not do (docs/rights.md).
 */
export class PermissionRoles {
  readonly #options: PermissionRolesOptions;
  /** Roles known to exist, per `tenantId:permission` (tenant ids are never reused). */
  readonly #known = new Map<string, Promise<string>>();

  constructor(options: PermissionRolesOptions) {
    this.#options = options;
  }

  /**
   * The name of `tenant`'s login role for `permission`, creating it when missing (idempotent and
   * safe against concurrent callers, in any process). Throws `TENANTRY_ERR_TENANT_NO_ROLE` when
   * the tenant has no login role, `TENANTRY_ERR_RIGHTS_UNAVAILABLE` when a database tenant's
   * database cannot enforce the permission.
   */
  ensure(tenant: Tenant, permission: Permission): Promise<string> {
    const admin = tenant.role;
    if (!admin) return Promise.reject(new TenantryError('TENANT_NO_ROLE', { tenant: tenant.name }));
    if (permission === 'admin') return Promise.resolve(admin);
    const key = `${tenant.id}:${permission}`;
    let known = this.#known.get(key);
    if (!known) {
      known = this.#create(tenant, admin, permission);
      this.#known.set(key, known);
      known.catch(() => this.#known.delete(key));
    }
    return known;
  }

  /** Forgets what is known about a tenant's roles (after it was dropped). */
  forget(tenantId: number): void {
    for (const key of this.#known.keys()) if (key.startsWith(`${tenantId}:`)) this.#known.delete(key);
  }

  async #create(tenant: Tenant, admin: string, permission: Exclude<Permission, 'admin'>): Promise<string> {
    const { pool, credentials, servers, roles } = this.#options;
    return inTransaction(pool, async (client) => {
      // The tenant's row lock serialises creators and state changes (LOGIN follows the state).
      const { rows: tenants } = await client.query<{ state: string; timeout: number | null }>(
        'SELECT state, statement_timeout_ms AS timeout FROM tenantry.tenant WHERE id = $1 FOR UPDATE',
        [tenant.id],
      );
      const state = tenants[0]?.state;
      const timeout = tenants[0]?.timeout ?? null;
      if (state === undefined) throw new TenantryError('TENANT_NOT_FOUND', { tenant: tenant.name });
      const { rows: existing } = await client.query<{ role_name: string }>(
        'SELECT role_name FROM tenantry.tenant_role WHERE tenant_id = $1 AND permission = $2',
        [tenant.id, permission],
      );
      if (existing[0]) return existing[0].role_name;

      const name = permissionRoleName(admin, permission);
      const password = randomBytes(24).toString('base64url');
      const spec = { name, admin, password, login: state === 'active', statementTimeoutMs: timeout };
      const searchPath = tenantSearchPath(tenant.uuid);
      if (tenant.isolation === 'database' && tenant.databaseName) {
        await createDatabasePermissionRole(
          await servers.url(tenant.server),
          { tenant: tenant.name, server: tenant.server, database: tenant.databaseName, appRole: roles.app },
          { ...spec, tenantId: tenant.id, permission, searchPath },
        );
      } else {
        await createMemberRole(client, spec);
        await client.query(`ALTER ROLE ${pg.escapeIdentifier(name)} SET search_path = ${searchPath}`);
      }
      await client.query(
        'INSERT INTO tenantry.tenant_role (role_name, tenant_id, permission) VALUES ($1, $2, $3)',
        [name, tenant.id, permission],
      );
      await credentials.put(
        client,
        tenantCredentialOwner(tenant.id),
        permissionPasswordField(permission),
        password,
      );
      return name;
    });
  }
}
