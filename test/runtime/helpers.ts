import {
  createTenantry,
  generateMasterKey,
  type Tenant,
  type TenantIsolation,
  type Tenantry,
} from '../../src/index.js';
import { createTestDatabase } from '../helpers/db.js';

/** The three isolation models every runtime feature must work for. */
export const ISOLATIONS: readonly TenantIsolation[] = ['shared', 'schema', 'database'];

/** A database with tenantry, a multi-tenant `note` table and two tenants per isolation model. */
export interface RuntimeFixture {
  readonly url: string;
  readonly key: string;
  readonly tenantry: Tenantry;
  /** HomeDepot_<isolation> and Lowes_<isolation>. */
  readonly tenants: Record<TenantIsolation, { readonly homeDepot: Tenant; readonly lowes: Tenant }>;
}

/** Creates the fixture: `note (tenant_id, id, body)` is multi-tenant, so handlers can write. */
export async function runtimeFixture(
  label: string,
  isolations: readonly TenantIsolation[] = ISOLATIONS,
): Promise<RuntimeFixture> {
  const url = await createTestDatabase(label);
  const key = generateMasterKey();
  const tenantry = await createTenantry({ databaseUrl: url, masterKey: key });
  await tenantry.operator.query(
    `CREATE TABLE public.note (tenant_id integer NOT NULL, id bigint NOT NULL, body text NOT NULL,
       PRIMARY KEY (tenant_id, id))`,
  );
  await tenantry.tables.multiTenant('public.note');
  const tenants = {} as Record<TenantIsolation, { homeDepot: Tenant; lowes: Tenant }>;
  for (const isolation of isolations) {
    const homeDepot = await tenantry.tenants.create({ name: `HomeDepot_${isolation}`, isolation });
    const lowes = await tenantry.tenants.create({ name: `Lowes_${isolation}`, isolation });
    tenants[isolation] = { homeDepot, lowes };
  }
  return { url, key, tenantry, tenants };
}

/** Resolves when `check` answers true, polling every 20 ms; fails after `ms`. */
export async function eventually(
  check: () => Promise<boolean> | boolean,
  ms = 10_000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
