import { dataOids, reachableOids, qualifiedRel, roleName } from './facts.js';
import type { AuditFacts, Finding, Queryable } from './types.js';

interface GrantRow {
  readonly object: string;
  readonly column: string | null;
  readonly grantee: string;
  readonly privilege: string;
  readonly partition: boolean;
  readonly rls: boolean;
}

/**
 * Privileges tenant SQL can use on multi-tenant tables (and their partitions) that row-level
 * security does not govern: TRUNCATE empties every tenant's rows, REFERENCES lets a foreign
 * key probe other tenants' keys, TRIGGER runs code on every tenant's rows; anything granted to
 * PUBLIC reaches every role; a partition read or written directly has no tenant policy at all.
 */
async function checkTablePrivileges(db: Queryable, facts: AuditFacts): Promise<Finding[]> {
  const { rows } = await db.query<GrantRow>(
    `WITH RECURSIVE rel(oid, partition) AS (
       SELECT oid, false FROM unnest($1::oid[]) AS oid
       UNION
       SELECT i.inhrelid, true FROM pg_inherits i JOIN rel ON i.inhparent = rel.oid
     )
     SELECT ${qualifiedRel('c.oid')} AS object, NULL::text AS "column", ${roleName('a.grantee')} AS grantee,
            a.privilege_type AS privilege, rel.partition, c.relrowsecurity AND c.relforcerowsecurity AS rls
     FROM rel JOIN pg_class c ON c.oid = rel.oid, aclexplode(c.relacl) a
     WHERE a.grantee = ANY($2::oid[]) AND a.grantee <> c.relowner
       AND (a.grantee = 0 OR rel.partition OR a.privilege_type IN ('TRUNCATE', 'REFERENCES', 'TRIGGER'))
     UNION ALL
     SELECT ${qualifiedRel('c.oid')}, quote_ident(att.attname), ${roleName('a.grantee')}, a.privilege_type,
            rel.partition, false
     FROM rel JOIN pg_class c ON c.oid = rel.oid
     JOIN pg_attribute att ON att.attrelid = c.oid AND att.attacl IS NOT NULL, aclexplode(att.attacl) a
     WHERE a.grantee = ANY($2::oid[]) AND (a.grantee = 0 OR a.privilege_type = 'REFERENCES')
     ORDER BY 1, 2, 3`,
    [dataOids(facts), reachableOids(facts)],
  );
  const findings: Finding[] = [];
  for (const row of rows) {
    if (row.partition && row.rls && row.grantee !== 'PUBLIC') continue;
    const severity =
      row.privilege === 'TRUNCATE' || row.grantee === 'PUBLIC' || row.partition ? 'high' : 'medium';
    const why = row.partition
      ? 'a partition (or child) read or written directly skips the parent table’s tenant policy'
      : row.privilege === 'TRUNCATE'
        ? 'TRUNCATE ignores row-level security: it empties every tenant’s rows'
        : row.privilege === 'REFERENCES'
          ? 'a foreign key to it lets the grantee probe other tenants’ keys'
          : row.privilege === 'TRIGGER'
            ? 'a trigger runs the grantee’s code on every tenant’s rows'
            : 'PUBLIC reaches every role, including ones tenantry does not pin to a tenant';
    findings.push({
      check:
        row.privilege === 'TRUNCATE' ? 'truncate-grant' : row.partition ? 'partition-grant' : 'table-grant',
      severity,
      object: row.object,
      message: `${row.privilege}${row.column ? ` (${row.column})` : ''} on multi-tenant ${row.partition ? 'partition' : 'table'} ${row.object} is granted to ${row.grantee}, which tenant SQL can act as: ${why}.`,
      fix: `REVOKE ${row.privilege}${row.column ? ` (${row.column})` : ''} ON ${row.object} FROM ${row.grantee};`,
    });
  }
  return findings;
}

/** Schemas that hold multi-tenant tables must not be usable by PUBLIC (tenants use tenantry_v). */
async function checkSchemas(db: Queryable, facts: AuditFacts): Promise<Finding[]> {
  const schemas = [...new Set(facts.registered.filter((r) => r.oid !== null).map((r) => r.schema))];
  const { rows } = await db.query<{ schema: string }>(
    `SELECT quote_ident(n.nspname) AS schema FROM pg_namespace n, aclexplode(n.nspacl) a
     WHERE n.nspname = ANY($1::name[]) AND a.grantee = 0 AND a.privilege_type = 'USAGE' ORDER BY 1`,
    [schemas],
  );
  return rows.map((row) => ({
    check: 'base-schema-public',
    severity: 'medium' as const,
    object: row.schema,
    message: `Schema ${row.schema} holds multi-tenant tables and PUBLIC may use it: tenant roles can name the base tables directly instead of their tenant-facing views (row-level security still applies, but the tenant column and other tenants' statistics come into reach).`,
    fix: `REVOKE USAGE ON SCHEMA ${row.schema} FROM PUBLIC; -- tenantry grants USAGE to its own roles`,
  }));
}

/** Registered tables that are gone, and the write guard of read users on those that exist. */
async function checkRegistry(db: Queryable, facts: AuditFacts): Promise<Finding[]> {
  const findings: Finding[] = facts.registered
    .filter((r) => r.oid === null)
    .map((r) => ({
      check: 'registered-table-missing',
      severity: 'medium' as const,
      object: r.qualified,
      message: `${r.qualified} is registered as multi-tenant but does not exist: a table created later under that name is not protected until it is declared again.`,
      fix: `DELETE FROM tenantry.registered_table WHERE schema_name = '${r.schema}' AND table_name = '${r.table}'; -- or recreate it and run tenantry table multi-tenant ${r.qualified}`,
    }));
  const { rows } = await db.query<{ object: string }>(
    `SELECT ${qualifiedRel('c.oid')} AS object FROM unnest($1::oid[]) AS c(oid)
     WHERE NOT EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid AND t.tgname = 'tenantry_guard_write'
                       AND t.tgenabled IN ('O', 'A')) ORDER BY 1`,
    [facts.dataTables.filter((t) => !t.runtime).map((t) => t.oid)],
  );
  for (const row of rows) {
    findings.push({
      check: 'write-guard-missing',
      severity: 'medium',
      object: row.object,
      message: `${row.object} has no enabled tenantry_guard_write trigger: users with the read permission can write it.`,
      fix: `SELECT tenantry.guard_table('${row.object}');`,
    });
  }
  return findings;
}

/**
 * Tables with a column referencing tenantry.tenant that were never declared multi-tenant: they
 * hold per-tenant rows with no row-level security (the "forgotten WHERE" tenantry exists to stop).
 */
async function checkUndeclared(db: Queryable, facts: AuditFacts): Promise<Finding[]> {
  const { rows } = await db.query<{ object: string; reachable: boolean; rls: boolean }>(
    `SELECT DISTINCT ${qualifiedRel('c.oid')} AS object, c.relrowsecurity AND c.relforcerowsecurity AS rls,
            EXISTS (SELECT 1 FROM aclexplode(c.relacl) a WHERE a.grantee = ANY($2::oid[])) AS reachable
     FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE con.contype = 'f' AND con.confrelid = 'tenantry.tenant'::regclass AND n.nspname <> 'tenantry'
       AND NOT c.oid = ANY($1::oid[]) AND NOT c.relispartition ORDER BY 1`,
    [dataOids(facts), reachableOids(facts)],
  );
  return rows
    .filter((row) => !row.rls)
    .map((row) => ({
      check: 'tenant-table-undeclared',
      severity: row.reachable ? ('high' as const) : ('medium' as const),
      object: row.object,
      message: `${row.object} references tenantry.tenant but is not declared multi-tenant: no row-level security separates its tenants' rows${row.reachable ? ', and tenant SQL holds privileges on it' : ''}.`,
      fix: `SELECT tenantry.multi_tenant('${row.object}');`,
    }));
}

/**
 * tenantry's catalog tables (secrets, credentials, tenants) are for its own roles only (its
 * runtime tables are multi-tenant and checked as such).
 */
async function checkCatalogGrants(db: Queryable, facts: AuditFacts): Promise<Finding[]> {
  const { rows } = await db.query<{ object: string; grantee: string; privilege: string }>(
    `SELECT ${qualifiedRel('c.oid')} AS object, ${roleName('a.grantee')} AS grantee, a.privilege_type AS privilege
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, aclexplode(c.relacl) a
     WHERE n.nspname = 'tenantry' AND c.relkind IN ('r', 'p', 'v', 'm', 'S') AND a.grantee = ANY($1::oid[])
       AND a.grantee <> c.relowner AND NOT c.oid = ANY($2::oid[]) ORDER BY 1, 2, 3`,
    [reachableOids(facts), dataOids(facts)],
  );
  return rows.map((row) => ({
    check: 'catalog-grant',
    severity: 'high' as const,
    object: row.object,
    message: `${row.privilege} on tenantry's catalog table ${row.object} is granted to ${row.grantee}, which tenant SQL can act as: the catalog holds every tenant, credential and secret.`,
    fix: `REVOKE ALL ON ${row.object} FROM ${row.grantee};`,
  }));
}

/** Privileges and declarations around multi-tenant tables. */
export async function checkGrants(db: Queryable, facts: AuditFacts): Promise<Finding[]> {
  return [
    ...(await checkTablePrivileges(db, facts)),
    ...(await checkSchemas(db, facts)),
    ...(await checkRegistry(db, facts)),
    ...(await checkUndeclared(db, facts)),
    ...(await checkCatalogGrants(db, facts)),
  ];
}
