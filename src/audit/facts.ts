import { rolesFor, type CatalogRoles } from '../catalog/index.js';
import { TenantryError } from '../errors.js';
import type { AuditFacts, DataTable, Queryable, ReachableRole, RegisteredFact, TenantFact } from './types.js';

/**
 * tenantry's own multi-tenant tables (its runtime services: jobs, the event outbox, id
 * counters), in schema tenantry for shared tenants and, prefixed `tenantry_`, in each schema
 * tenant's data schema. Checked like registered tables.
 */
const RUNTIME_TABLES = ['job', 'event', 'event_head', 'id_counter'];

/** Names of tenant login roles: `tenantry_t_<uuid>`, with `_w` / `_r` for write and read. */
export const TENANT_ROLE_PATTERN = '^tenantry_t_[0-9a-f]{32}(_[rw])?$';

/**
 * The installation's roles. They are named after the database the catalog was installed in;
 * the owner of schema `tenantry` names them even after the database was renamed or copied.
 */
async function installedRoles(db: Queryable): Promise<{ database: string; roles: CatalogRoles }> {
  const { rows } = await db.query<{ database: string; owner: string | null; installed: boolean }>(
    `SELECT current_database() AS database,
            (SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'tenantry') AS owner,
            to_regclass('tenantry.catalog_version') IS NOT NULL AND to_regclass('tenantry.tenant_role') IS NOT NULL
              AS installed`,
  );
  const row = rows[0];
  if (!row?.installed) throw new TenantryError('CATALOG_NOT_INSTALLED');
  const prefix = row.owner?.endsWith('_owner') ? row.owner.slice(0, -'_owner'.length) : undefined;
  if (!prefix) return { database: row.database, roles: rolesFor(row.database) };
  const roles: CatalogRoles = {
    owner: `${prefix}_owner`,
    app: `${prefix}_app`,
    maint: `${prefix}_maint`,
    tenants: `${prefix}_tenants`,
    global: `${prefix}_global`,
    fdw: `${prefix}_fdw`,
  };
  return { database: row.database, roles };
}

async function loadTenants(db: Queryable): Promise<TenantFact[]> {
  const { rows } = await db.query<TenantFact>(
    `SELECT id, uuid::text AS uuid, name, kind, state, isolation, server,
            schema_name AS "schemaName", database_name AS "databaseName"
     FROM tenantry.tenant ORDER BY id`,
  );
  return rows;
}

async function loadRegistered(db: Queryable): Promise<RegisteredFact[]> {
  const { rows } = await db.query<RegisteredFact>(
    `SELECT r.schema_name AS schema, r.table_name AS "table", r.tenant_column AS "tenantColumn",
            format('%I.%I', r.schema_name, r.table_name) AS qualified,
            to_regclass(format('%I.%I', r.schema_name, r.table_name))::oid::int AS oid,
            EXISTS (SELECT 1 FROM tenantry.tenant_group g
                    WHERE g.schema_name = r.schema_name AND g.table_name = r.table_name) AS grouped
     FROM tenantry.registered_table r WHERE r.kind = 'multi_tenant' ORDER BY 1, 2`,
  );
  return rows;
}

/**
 * The registered multi-tenant tables that exist, every schema tenant's copies of them, and
 * tenantry's runtime tables.
 */
async function loadDataTables(db: Queryable, registered: readonly RegisteredFact[]): Promise<DataTable[]> {
  const tables: DataTable[] = [];
  for (const r of registered) {
    if (r.oid === null) continue;
    tables.push({
      oid: r.oid,
      name: r.qualified,
      tenantColumn: r.tenantColumn,
      base: r.qualified,
      copyOf: null,
      grouped: r.grouped,
      runtime: false,
    });
  }
  const { rows } = await db.query<{ oid: number; name: string; tenant: string; base: string; col: string }>(
    `SELECT c.oid::int AS oid, format('%I.%I', t.schema_name, r.table_name) AS name, t.name AS tenant,
            format('%I.%I', r.schema_name, r.table_name) AS base, r.tenant_column AS col
     FROM tenantry.tenant t
     JOIN tenantry.registered_table r ON r.kind = 'multi_tenant'
     JOIN pg_namespace n ON n.nspname = t.schema_name
     JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = r.table_name AND c.relkind IN ('r', 'p')
     WHERE t.isolation = 'schema' ORDER BY 2`,
  );
  for (const row of rows) {
    tables.push({
      oid: row.oid,
      name: row.name,
      tenantColumn: row.col,
      base: row.base,
      copyOf: row.tenant,
      grouped: false,
      runtime: false,
    });
  }
  const runtime = await db.query<{ oid: number; name: string; tenant: string | null }>(
    `SELECT c.oid::int AS oid, format('%I.%I', n.nspname, c.relname) AS name, t.name AS tenant
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     LEFT JOIN tenantry.tenant t ON t.schema_name = n.nspname
     WHERE c.relkind IN ('r', 'p')
       AND ((n.nspname = 'tenantry' AND c.relname = ANY($1::name[]))
            OR (t.id IS NOT NULL AND c.relname = ANY(ARRAY(SELECT 'tenantry_' || r FROM unnest($1::text[]) r))))
     ORDER BY 2`,
    [RUNTIME_TABLES],
  );
  for (const row of runtime.rows) {
    tables.push({
      oid: row.oid,
      name: row.name,
      tenantColumn: 'tenant_id',
      base: row.name,
      copyOf: row.tenant,
      grouped: false,
      runtime: true,
    });
  }
  return tables;
}

/**
 * Every role tenant SQL can act as: the application role, tenant login roles (registered, or
 * named like one and a member of this installation's tenant groups), and every group they
 * belong to, however indirectly. (Roles are cluster-wide: other catalogs' tenants are not ours.)
 */
async function loadReachable(db: Queryable, roles: CatalogRoles): Promise<Map<number, ReachableRole>> {
  const { rows } = await db.query<ReachableRole>(
    `WITH RECURSIVE members(oid) AS (
       SELECT oid FROM pg_roles WHERE rolname IN ($3, $4)
       UNION
       SELECT m.member FROM pg_auth_members m JOIN members g ON m.roleid = g.oid
     ), reach(oid) AS (
       SELECT oid FROM pg_roles
       WHERE rolname = $1 OR rolname IN (SELECT role_name FROM tenantry.tenant_role)
          OR (rolname ~ $2 AND oid IN (SELECT oid FROM members))
       UNION
       SELECT m.roleid FROM pg_auth_members m JOIN reach r ON m.member = r.oid
     )
     SELECT r.oid::int AS oid, r.rolname AS name, r.rolsuper AS superuser, r.rolbypassrls AS "bypassRls",
            r.rolcreaterole AS "createRole", r.rolcreatedb AS "createDb"
     FROM pg_roles r JOIN reach USING (oid)`,
    [roles.app, TENANT_ROLE_PATTERN, roles.tenants, roles.global],
  );
  return new Map(rows.map((r) => [r.oid, r]));
}

/** Reads what the checks need; throws `TENANTRY_ERR_CATALOG_NOT_INSTALLED` without a catalog. */
export async function loadFacts(db: Queryable): Promise<AuditFacts> {
  const { database, roles } = await installedRoles(db);
  const registered = await loadRegistered(db);
  const { rows: tenantRoles } = await db.query<{ role_name: string; tenant_id: number; permission: string }>(
    'SELECT role_name, tenant_id, permission FROM tenantry.tenant_role',
  );
  const { rows: sequences } = await db.query<{ name: string; kind: string }>(
    'SELECT name, kind FROM tenantry.sequence',
  );
  return {
    database,
    roles,
    tenants: await loadTenants(db),
    tenantRoles: new Map(
      tenantRoles.map((r) => [r.role_name, { tenantId: r.tenant_id, permission: r.permission }]),
    ),
    registered,
    dataTables: await loadDataTables(db, registered),
    reachable: await loadReachable(db, roles),
    sequences: new Map(sequences.map((s) => [s.name, s.kind])),
  };
}

/** The oids of the data tables, for `= ANY($1)` parameters. */
export function dataOids(facts: AuditFacts): number[] {
  return facts.dataTables.map((t) => t.oid);
}

/** The oids of the reachable roles plus PUBLIC (0), for `= ANY($1)` parameters. */
export function reachableOids(facts: AuditFacts): number[] {
  return [0, ...facts.reachable.keys()];
}

/** `format('%I.%I', schema, name)` of the relation with oid `expr`. */
export function qualifiedRel(expr: string): string {
  return `(SELECT format('%I.%I', qn.nspname, qc.relname) FROM pg_class qc
           JOIN pg_namespace qn ON qn.oid = qc.relnamespace WHERE qc.oid = ${expr})`;
}

/** A role oid as a name, `PUBLIC` for 0. */
export function roleName(expr: string): string {
  return `(CASE WHEN ${expr} = 0 THEN 'PUBLIC' ELSE (SELECT quote_ident(qr.rolname) FROM pg_roles qr WHERE qr.oid = ${expr}) END)`;
}

/** Schemas of tenants' own objects (`tenantry_f_…`) and schema tenants' data (`tenantry_t_…`). */
export const TENANT_SCHEMA = `(n.nspname ~ '^tenantry_[ft]_[0-9a-f]{32}$')`;

/** Schemas no check looks into. */
export const SYSTEM_SCHEMA = `(n.nspname IN ('pg_catalog', 'information_schema', 'pg_toast') OR n.nspname LIKE 'pg\\_temp\\_%' OR n.nspname LIKE 'pg\\_toast\\_temp\\_%')`;
