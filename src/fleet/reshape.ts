import pg from 'pg';
import { tenantFaceSchema, type CatalogRoles, type RegisteredTable } from '../catalog/index.js';
import { syncDatabase, type RegistryPlan } from './database-sync.js';
import type { Queryable } from './fleet-store.js';
import { changedTables, type Relation, type Snapshot, type Target } from './target.js';
import { detachViews, refreshViews, restoreViews, type Detached, type ViewBuild } from './view-rebuild.js';

/** What reshaping needs besides the target's own connection. */
export interface ReshapeContext {
  readonly roles: CatalogRoles;
  /** The catalog database's snapshot (database targets compare their foreign tables with it). */
  readonly catalog?: Snapshot;
  /** The registry's definitions, for database targets that lack a table. */
  readonly plan: () => Promise<RegistryPlan>;
}

const q = pg.escapeIdentifier;

/**
 * Per grantee, the column privileges it holds on some column of the table (the tenant column and
 * tenantry_ext aside) and the columns that lack some of them: those a migration added, or any a
 * hand-made change left out (a tenant-facing view over them would fail with 42501).
 */
const MIRROR = `
  WITH cols AS (SELECT attname, attacl FROM pg_attribute
                WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped AND attname <> ALL($2::name[])),
       held AS (SELECT DISTINCT a.grantee, a.privilege_type FROM cols CROSS JOIN LATERAL aclexplode(cols.attacl) a
                WHERE a.grantee <> 0)
  SELECT pg_get_userbyid(h.grantee) AS grantee, string_agg(DISTINCT h.privilege_type, ', ') AS privs,
         string_agg(DISTINCT quote_ident(c.attname), ', ') AS cols
  FROM held h CROSS JOIN cols c
  WHERE NOT EXISTS (SELECT 1 FROM aclexplode(c.attacl) x WHERE x.grantee = h.grantee AND x.privilege_type = h.privilege_type)
  GROUP BY h.grantee`;

/** Grants the columns that lack them the column privileges their table's other columns carry. */
async function mirrorGrants(db: Queryable, rel: Relation, tenantColumn: string | null) {
  const { rows } = await db.query<{ grantee: string; privs: string; cols: string }>(MIRROR, [
    rel.oid,
    [tenantColumn ?? '', 'tenantry_ext'],
  ]);
  for (const row of rows)
    await db.query(`GRANT ${row.privs} (${row.cols}) ON ${rel.name} TO ${q(row.grantee)}`);
}

/** Keys whose tenant-facing objects must be rebuilt: the changed ones, or all after a detach. */
function toRebuild(before: Snapshot, after: Snapshot, detached: Detached | undefined): string[] {
  return detached
    ? [...after.relations].filter(([, rel]) => rel).map(([key]) => key)
    : changedTables(before, after);
}

const facing = (schema: string, t: RegisteredTable, rel: Relation, grantees: string[]): ViewBuild => ({
  schema,
  name: t.table,
  sql: 'SELECT tenantry.create_facing_view($1, $2::regclass, $3, $4, $5::name[])',
  values: [schema, rel.name, t.tenantColumn, t.kind === 'multi_tenant' || t.writable, grantees],
});

const ownView = (face: string, tenantId: number, key: string, table: string): ViewBuild => ({
  schema: face,
  name: table,
  sql: 'SELECT tenantry.refresh_tenant_view(t, $1) FROM tenantry.tenant t WHERE t.id = $2',
  values: [key, tenantId],
});

/** The catalog database: tenantry_v's views, grants, groups' and shared tenants' own views. */
async function reshapeShared(
  db: Queryable,
  before: Snapshot,
  after: Snapshot,
  ctx: ReshapeContext,
  detached?: Detached,
) {
  const { app, tenants, global } = ctx.roles;
  for (const [key, t] of after.registry) {
    const rel = after.relations.get(key);
    if (rel && t.kind === 'multi_tenant' && before.registry.get(key)?.kind !== 'multi_tenant')
      await db.query('SELECT tenantry.add_allocation_policy($1::regclass)', [rel.name]);
  }
  const builds: ViewBuild[] = [];
  for (const key of toRebuild(before, after, detached)) {
    const t = after.registry.get(key);
    const rel = after.relations.get(key);
    if (!t || !rel) continue;
    if (t.kind === 'shared') {
      builds.push(facing('tenantry_v', t, rel, [app, global]));
      continue;
    }
    await mirrorGrants(db, rel, t.tenantColumn);
    await db.query('SELECT tenantry.grant_owned_sequences($1::regclass)', [rel.name]);
    const { rows: grouped } = await db.query(
      'SELECT 1 FROM tenantry.tenant_group WHERE schema_name = $1 AND table_name = $2 LIMIT 1',
      [t.schema, t.table],
    );
    builds.push(
      grouped.length > 0
        ? {
            schema: 'tenantry_v',
            name: t.table,
            sql: 'SELECT tenantry.enable_groups($1::regclass, $2)',
            values: [rel.name, t.tenantColumn],
          }
        : facing('tenantry_v', t, rel, [app, tenants]),
    );
    const { rows: own } = await db.query<{ id: number; uuid: string }>(
      `SELECT t.id, t.uuid FROM tenantry.tenant t WHERE t.isolation = 'shared' AND EXISTS (
         SELECT 1 FROM tenantry.tenant_column c WHERE c.tenant_id = t.id AND c.schema_name = $1 AND c.table_name = $2)`,
      [t.schema, t.table],
    );
    for (const tenant of own) builds.push(ownView(tenantFaceSchema(tenant.uuid), tenant.id, key, t.table));
  }
  await (detached ? restoreViews(db, detached, builds) : refreshViews(db, builds));
}

/** A schema tenant: copies a migration created or lacks are secured, its face views rebuilt. */
async function reshapeSchema(
  db: Queryable,
  target: Target,
  before: Snapshot,
  after: Snapshot,
  ctx: ReshapeContext,
  detached?: Detached,
) {
  const tenant = target.tenant;
  const schema = target.schema;
  if (!tenant || !schema) return;
  const face = tenantFaceSchema(tenant.uuid);
  const { rows: roleRows } = await db.query<{ role_name: string }>(
    'SELECT role_name FROM tenantry.tenant_role WHERE tenant_id = $1 ORDER BY role_name',
    [tenant.id],
  );
  const grantees = [ctx.roles.app, ...roleRows.map((r) => r.role_name)];
  const { rows: extraRows } = await db.query<{ key: string }>(
    "SELECT DISTINCT schema_name || '.' || table_name AS key FROM tenantry.tenant_column WHERE tenant_id = $1",
    [tenant.id],
  );
  const extras = new Set(extraRows.map((r) => r.key));
  // copies a migration created (not secured yet), and tables registered since, cloned like a new tenant's
  const provisioned: { src: string; copy: string }[] = [];
  for (const [key, t] of after.registry) {
    const rel = after.relations.get(key);
    if (t.kind !== 'multi_tenant' || (rel && rel.secured)) continue;
    const copy = `${q(schema)}.${q(t.table)}`;
    const { rows } = await db.query<{ src: string }>(
      `SELECT CASE WHEN to_regclass($1) IS NOT NULL AND tenantry.column_shape(to_regclass($1)) = tenantry.column_shape($2::regclass)
                   THEN $1::text ELSE $2::text END AS src`,
      [`tenantry_template.${q(t.table)}`, `${q(t.schema)}.${q(t.table)}`],
    );
    const src = rows[0]!.src;
    if (!rel) await db.query('SELECT tenantry.copy_table($1::regclass, $2)', [src, schema]);
    await db.query('SELECT tenantry.secure_copy($1::regclass, $2, $3, $4, $5)', [
      copy,
      face,
      t.tenantColumn,
      tenant.role,
      !rel,
    ]);
    provisioned.push({ src, copy });
  }
  for (const { src, copy } of provisioned) {
    await db.query('SELECT tenantry.clone_foreign_keys($1::regclass, $2::regclass, $3)', [src, copy, schema]);
  }
  const builds: ViewBuild[] = [];
  for (const key of toRebuild(before, after, detached)) {
    const t = after.registry.get(key);
    const rel = after.relations.get(key);
    if (!t || !rel || !rel.secured) continue;
    await mirrorGrants(db, rel, t.tenantColumn);
    builds.push(extras.has(key) ? ownView(face, tenant.id, key, t.table) : facing(face, t, rel, grantees));
  }
  if (builds.length > 0 || provisioned.length > 0)
    await db.query(
      `GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA ${q(schema)} TO ${grantees.map(q).join(', ')}`,
    );
  await (detached ? restoreViews(db, detached, builds) : refreshViews(db, builds));
}

/** A database tenant (or template): missing tables copied, stale foreign tables re-imported, views rebuilt. */
async function reshapeDatabase(
  db: Queryable & pg.ClientBase,
  target: Target,
  before: Snapshot,
  after: Snapshot,
  ctx: ReshapeContext,
  detached?: Detached,
) {
  const grantees = { appRole: ctx.roles.app, role: target.role ?? '' };
  // missing, or created by the step itself and not yet secured (no isolation policy)
  const missing = new Set(
    [...after.relations]
      .filter(([key, rel]) => !rel || (!rel.secured && after.registry.get(key)?.kind === 'multi_tenant'))
      .map(([key]) => key),
  );
  const stale = [...after.relations].filter(([key, rel]) => {
    const catalog = ctx.catalog?.relations.get(key);
    return rel && catalog && after.registry.get(key)?.kind === 'shared' && catalog.shape !== rel.shape;
  });
  let foreign: Detached | undefined;
  if (stale.length > 0) {
    foreign = await detachViews(
      db,
      stale.map(([, rel]) => rel!.oid),
      false,
    );
    for (const [, rel] of stale) await db.query(`DROP FOREIGN TABLE IF EXISTS ${rel!.name} CASCADE`);
  }
  if (missing.size > 0 || stale.length > 0) await syncDatabase(db, grantees, await ctx.plan(), missing);
  if (foreign) await restoreViews(db, foreign, []);
  const builds: ViewBuild[] = [];
  const schemas = new Set<string>();
  for (const key of toRebuild(before, after, detached)) {
    const t = after.registry.get(key);
    const rel = after.relations.get(key);
    if (!t || !rel || t.kind !== 'multi_tenant') continue;
    await mirrorGrants(db, rel, t.tenantColumn);
    builds.push(facing('tenantry_v', t, rel, [grantees.appRole, grantees.role]));
    schemas.add(t.schema);
  }
  for (const schema of schemas) {
    await db.query(
      `GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA ${q(schema)} TO ${q(grantees.appRole)}, ${q(grantees.role)}`,
    );
  }
  await (detached ? restoreViews(db, detached, builds) : refreshViews(db, builds));
}

/**
 * After a migration step on `target`: brings what tenantry derives from the tables — column
 * privileges, tenant-facing views, tenants' own views (`SELECT *` ones widened), per-tenant
 * column views, copies of newly registered tables — in line with their new shape, in the step's
 * transaction. `detached`: the views taken down so the step could run (all are rebuilt).
 */
export async function reshape(
  db: pg.ClientBase,
  target: Target,
  before: Snapshot,
  after: Snapshot,
  ctx: ReshapeContext,
  detached?: Detached,
): Promise<void> {
  switch (target.kind) {
    case 'shared':
      return reshapeShared(db, before, after, ctx, detached);
    case 'schema':
      return reshapeSchema(db, target, before, after, ctx, detached);
    case 'database':
    case 'database-template':
      return reshapeDatabase(db, target, before, after, ctx, detached);
    case 'schema-template':
      if (detached) await restoreViews(db, detached, []);
  }
}
