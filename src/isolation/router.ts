import pg from 'pg';
import { tenantSearchPath, type CredentialStore, type Tenant } from '../catalog/index.js';
import { withCredentials, withDatabase } from '../connection-url.js';
import { TenantryError } from '../errors.js';
import type { Permission } from '../identity/names.js';
import type { ServerRegistry } from '../servers/index.js';
import { type PreludeStatement, type TenantRoute } from '../session/index.js';
import { permissionPasswordField, type PermissionRoles } from './permission-roles.js';
import { tenantCredentialOwner } from './provision.js';

/**
 * Who tenant statements run as:
 * - `app`: the shared application role with a transaction-local tenant setting — for the
 *   application's own, trusted code (the setting is open to any SQL the session runs);
 * - `tenant`: the tenant's own login role, which PostgreSQL resolves to the tenant from
 *   `session_user` — for SQL a tenant wrote (gateway, HTTP SQL, console).
 */
export type Identity = 'app' | 'tenant';

/** Connection settings of the application role and of each server. */
export interface RouterOptions {
  readonly appUser: string;
  readonly appPassword: string;
  readonly credentials: CredentialStore;
  readonly servers: ServerRegistry;
  /** Creates a tenant's `write` and `read` login roles on first use. */
  readonly permissionRoles: Pick<PermissionRoles, 'ensure'>;
  /** Connections each application-role pool may hold (config `pool.sharedPoolMax`). */
  readonly sharedPoolMax?: number | undefined;
}

/**
 * The pool identity of a tenant's own login role for `permission`: `tenant:<id>` for `admin`
 * (the tenant's own role), `tenant:<id>:write` and `tenant:<id>:read` for the others.
 */
export function tenantPoolIdentity(tenantId: number, permission: Permission = 'admin', epoch = 0): string {
  const base = permission === 'admin' ? `tenant:${tenantId}` : `tenant:${tenantId}:${permission}`;
  // A moved tenant's login role lives elsewhere: its pools are new ones, never the old copy's.
  return epoch > 0 ? `${base}@${epoch}` : base;
}

/**
 * The application role's prelude statement for a shared or schema tenant: sets the tenant only
 * while the catalog's placement epoch is the one this process routed by — a process that has not
 * yet seen a move fails with SQLSTATE TN001 (TENANTRY_ERR_TENANT_MOVED) instead of writing to the
 * copy the tenant left (migration 021). Database tenants' own databases vanish with a move.
 */
const CHECKED_ENTER =
  "SELECT set_config('tenantry.tenant', CASE WHEN EXISTS (SELECT 1 FROM tenantry.tenant WHERE id = $1::text::int AND placement_epoch = $3::text::int) THEN $1::text ELSE tenantry.placement_moved($1::text::int) END, true), set_config('search_path', $2::text, true)";

/**
 * The one prelude statement of the application role: sets the tenant and search_path (checking the
 * placement epoch, except for database tenants), makes the transaction read-only for the `read`
 * permission and applies the tenant's own statement limit (tenants.setLimits) — all
 * transaction-local. Each combination is its own prepared statement (parsed once per connection);
 * `text` is the literal form for the simple protocol.
 */
function enterStatement(tenant: Tenant, permission: Permission, searchPath: string): PreludeStatement {
  const checked = tenant.isolation !== 'database';
  const values = [String(tenant.id), searchPath];
  let text = checked
    ? CHECKED_ENTER
    : "SELECT set_config('tenantry.tenant', $1, true), set_config('search_path', $2, true)";
  let name = checked ? 'tenantry_enter_checked' : 'tenantry_enter';
  if (checked) values.push(String(tenant.placementEpoch));
  if (permission === 'read') {
    text += ", set_config('transaction_read_only', 'on', true)";
    name += '_read';
  }
  if (tenant.statementTimeoutMs) {
    values.push(String(Math.trunc(tenant.statementTimeoutMs)));
    text += `, set_config('statement_timeout', $${values.length}::text, true)`;
    name += '_limited';
  }
  const literal = text.replace(/\$(\d)/g, (_whole, n: string) =>
    pg.escapeLiteral(values[Number(n) - 1] ?? ''),
  );
  return { text: literal, prepared: { name, text, values } };
}

/**
 * Computes, per tenant and identity, the pool to use and the statements that set the tenant —
 * the same calls then work for shared, schema and database tenants on any server.
 */
export class Router {
  readonly #options: RouterOptions;

  constructor(options: RouterOptions) {
    this.#options = options;
  }

  /** Connection settings for `user` on the tenant's server and database. */
  async #connection(
    tenant: Tenant,
    user: string,
    password: string,
    application: string,
  ): Promise<pg.ClientConfig> {
    let url = withCredentials(await this.#options.servers.url(tenant.server), user, password);
    if (tenant.isolation === 'database' && tenant.databaseName) url = withDatabase(url, tenant.databaseName);
    return { connectionString: url, application_name: application };
  }

  /**
   * The route of `tenant`'s statements under `identity` and `permission` (default `admin`).
   * `tenant`: the tenant's login role for that permission (its own role for `admin`, a member
   * role for `write` and `read`, created on first connection), pool identity
   * {@link tenantPoolIdentity}; PostgreSQL enforces the permission. `app`: the application role;
   * `read` makes each transaction read-only. Throws `TENANTRY_ERR_TENANT_NO_ROLE` for the
   * `tenant` identity when the tenant has no login role.
   */
  route(tenant: Tenant, identity: Identity, permission: Permission = 'admin'): TenantRoute {
    const { servers, appUser, appPassword, credentials, permissionRoles } = this.#options;
    const schema = tenant.isolation === 'schema' ? (tenant.schemaName ?? undefined) : undefined;
    const base = { server: tenant.server, tenantId: tenant.id, tenantName: tenant.name };
    if (identity === 'app') {
      // Names resolve to the tenant's own objects, then its tenant-facing views.
      const searchPath = tenantSearchPath(tenant.uuid);
      const prelude: PreludeStatement[] = [enterStatement(tenant, permission, searchPath)];
      // Connections are per database: a database tenant's app-role pool is its own.
      const poolIdentity = tenant.databaseName ? `app:${tenant.databaseName}` : 'app';
      return {
        target: {
          ...base,
          identity: poolIdentity,
          ...(this.#options.sharedPoolMax === undefined
            ? {}
            : { maxConnections: this.#options.sharedPoolMax }),
          connect: async () =>
            this.#connection(
              tenant,
              appUser,
              await servers.appPassword(tenant.server, appPassword),
              'tenantry',
            ),
        },
        prelude,
        ...(schema ? { schema } : {}),
      };
    }
    if (!tenant.role) throw new TenantryError('TENANT_NO_ROLE', { tenant: tenant.name });
    return {
      target: {
        ...base,
        identity: tenantPoolIdentity(tenant.id, permission, tenant.placementEpoch),
        connect: async () => {
          const role = await permissionRoles.ensure(tenant, permission);
          const field = permissionPasswordField(permission);
          const password = await credentials.get(tenantCredentialOwner(tenant.id), field);
          return this.#connection(tenant, role, password, 'tenantry-tenant');
        },
      },
      prelude: [],
      untrusted: true,
      ...(schema ? { schema } : {}),
    };
  }
}
