import pg from 'pg';
import type { CredentialStore } from '../catalog/credentials.js';
import type { Tenant } from '../catalog/index.js';
import { withCredentials } from '../connection-url.js';
import { TenantryError } from '../errors.js';
import type { TenantRoute } from '../session/index.js';
import { tenantSetting } from '../session/index.js';
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
  /** The catalog server's URL (any credentials; they are replaced per identity). */
  readonly mainUrl: string;
  readonly appUser: string;
  readonly appPassword: string;
  readonly credentials: CredentialStore;
}

/** Computes, per tenant and identity, the pool to use and the statements that set the tenant. */
export class Router {
  readonly #options: RouterOptions;

  constructor(options: RouterOptions) {
    this.#options = options;
  }

  /** The route of `tenant`'s statements under `identity`. */
  route(tenant: Tenant, identity: Identity): TenantRoute {
    const schema = tenant.isolation === 'schema' ? (tenant.schemaName ?? undefined) : undefined;
    const base = { server: tenant.server, tenantId: tenant.id, tenantName: tenant.name };
    if (identity === 'app') {
      const config: pg.ClientConfig = {
        connectionString: withCredentials(
          this.#options.mainUrl,
          this.#options.appUser,
          this.#options.appPassword,
        ),
        application_name: 'tenantry',
      };
      const prelude = [tenantSetting(tenant)];
      if (schema)
        prelude.push(
          `SELECT set_config('search_path', ${pg.escapeLiteral(`${pg.escapeIdentifier(schema)}, public`)}, true)`,
        );
      return {
        target: { ...base, identity: 'app', connect: () => config },
        prelude,
        ...(schema ? { schema } : {}),
      };
    }
    const role = tenant.role;
    if (!role) throw new TenantryError('TENANT_NO_ROLE', { tenant: tenant.name });
    const credentials = this.#options.credentials;
    const mainUrl = this.#options.mainUrl;
    return {
      target: {
        ...base,
        identity: `tenant:${tenant.id}`,
        connect: async () => ({
          connectionString: withCredentials(
            mainUrl,
            role,
            await credentials.get(tenantCredentialOwner(tenant.id), 'password'),
          ),
          application_name: 'tenantry-tenant',
        }),
      },
      prelude: [],
      untrusted: true,
      ...(schema ? { schema } : {}),
    };
  }
}
