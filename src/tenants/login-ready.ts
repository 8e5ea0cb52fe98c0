import type { Tenant } from '../catalog/index.js';
import type { TenantStore } from './tenant-store.js';

/** Runs one statement as the operator. */
type OperatorQuery = (sql: string, values?: unknown[]) => Promise<unknown>;

/**
 * Makes tenants ready for SQL under their own login role, once per tenant and process: creates
 * the role when the tenant has none, and makes sure the tenant's own schema exists and is granted
 * to its roles before their sessions compute their search_path (name resolution caches it).
 */
export class LoginReadiness {
  readonly #tenants: TenantStore;
  readonly #query: OperatorQuery;
  readonly #ready = new Map<number, Promise<void>>();
  /** Role creations in flight, so concurrent first uses create the role once. */
  readonly #creating = new Map<number, Promise<Tenant>>();

  constructor(tenants: TenantStore, query: OperatorQuery) {
    this.#tenants = tenants;
    this.#query = query;
  }

  /** The tenant with its login role, ready to be used (the same object when it had one). */
  async ready(tenant: Tenant): Promise<Tenant> {
    const withRole = tenant.role ? tenant : await this.#createRole(tenant.id);
    // A database tenant's own schema is made in its own database when it is provisioned; its
    // roles may live on another server, unknown to the catalog's.
    if (tenant.isolation === 'database') return withRole;
    let done = this.#ready.get(tenant.id);
    if (!done) {
      done = this.#query("SELECT set_config('tenantry.tenant', $1, true), tenantry.ensure_own_schema()", [
        String(tenant.id),
      ]).then(() => undefined);
      this.#ready.set(tenant.id, done);
      done.catch(() => this.#ready.delete(tenant.id));
    }
    await done;
    return withRole;
  }

  #createRole(id: number): Promise<Tenant> {
    let creating = this.#creating.get(id);
    if (!creating) {
      creating = this.#tenants.ensureLoginRole(id).finally(() => this.#creating.delete(id));
      this.#creating.set(id, creating);
    }
    return creating;
  }
}
