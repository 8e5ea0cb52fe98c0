import pg from 'pg';
import type { CatalogRoles, CredentialStore, Tenant, TenantRef } from '../../catalog/index.js';
import { withClient } from '../../isolation/database.js';
import { placementUrl, type Placement, type PlacementUrls } from './placement.js';

/** What the mover needs of a tenantry instance. */
export interface MoverDeps extends PlacementUrls {
  readonly admin: pg.Pool;
  readonly roles: CatalogRoles;
  readonly credentials: CredentialStore;
  /** Creates a database tenant's role and database on a server (from the template). */
  createDatabase(
    tenant: { id: number; uuid: string; name: string },
    server: string,
    names: { database: string; role: string; password: string },
  ): Promise<void>;
  /** The tenant as the catalog has it now (not the cache). */
  showTenant(ref: TenantRef): Promise<Tenant>;
  /** Reloads this process's catalog cache. */
  reload(): Promise<void>;
  /** Closes this process's pools of the tenant's old placement. */
  closePools(tenant: Tenant): void;
}

/** Opens an operator connection to a placement's database for the duration of `fn`. */
export async function onPlacement<T>(
  deps: MoverDeps,
  placement: Placement,
  fn: (db: pg.Client) => Promise<T>,
): Promise<T> {
  return withClient(await placementUrl(deps, placement), fn);
}
