import { dataOids, reachableOids, SYSTEM_SCHEMA, TENANT_SCHEMA, qualifiedRel } from './facts.js';
import type { AuditFacts, Finding, Queryable } from './types.js';

interface ViewRow {
  readonly object: string;
  readonly kind: 'v' | 'm';
  readonly schema: string;
  readonly tenantSchema: boolean;
  readonly owner: string;
  readonly ownerBypasses: boolean;
  readonly invoker: boolean;
  readonly readable: boolean;
}

/**
 * Every view and materialized view that reads a multi-tenant table, directly or through other
 * views (pg_depend of their rewrite rules), with what decides whose rows it shows.
 */
const VIEWS_SQL = `
  WITH RECURSIVE reads(oid) AS (
    SELECT unnest($1::oid[])
    UNION
    SELECT rw.ev_class FROM reads
    JOIN pg_depend d ON d.refclassid = 'pg_class'::regclass AND d.refobjid = reads.oid AND d.classid = 'pg_rewrite'::regclass
    JOIN pg_rewrite rw ON rw.oid = d.objid AND rw.ev_class <> reads.oid
  )
  SELECT ${qualifiedRel('c.oid')} AS object, c.relkind AS kind, n.nspname AS schema, ${TENANT_SCHEMA} AS "tenantSchema",
         o.rolname AS owner, o.rolsuper OR o.rolbypassrls AS "ownerBypasses",
         coalesce((SELECT lower(option_value) IN ('true', 'on', '1', 'yes')
                   FROM pg_options_to_table(c.reloptions) WHERE option_name = 'security_invoker'), false) AS invoker,
         EXISTS (SELECT 1 FROM aclexplode(c.relacl) a WHERE a.grantee = ANY($2::oid[]) AND a.grantee <> c.relowner) AS readable
  FROM reads JOIN pg_class c ON c.oid = reads.oid JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_roles o ON o.oid = c.relowner
  WHERE c.relkind IN ('v', 'm') AND NOT ${SYSTEM_SCHEMA}
  ORDER BY 1`;

function sanctioned(row: ViewRow): boolean {
  // tenantry's tenant-facing views and tenants' own views: security_invoker, enforced by tenantry
  if ((row.schema === 'tenantry_v' || row.tenantSchema) && row.kind === 'v') return row.invoker;
  // a tenant's own materialized view holds what its creator could see: its own rows
  return row.tenantSchema && row.kind === 'm';
}

/**
 * Views over multi-tenant tables must be `security_invoker`: otherwise they read the tables
 * with their owner's rights, and an owner that is a superuser or BYPASSRLS skips row-level
 * security for everyone who reads the view. A materialized view stores what its owner saw when
 * it was refreshed — every tenant's rows, for the operator.
 */
export async function checkViews(db: Queryable, facts: AuditFacts): Promise<Finding[]> {
  const { rows } = await db.query<ViewRow>(VIEWS_SQL, [dataOids(facts), reachableOids(facts)]);
  const findings: Finding[] = [];
  for (const row of rows) {
    if (sanctioned(row) || (row.kind === 'v' && row.invoker)) continue;
    if (row.schema === 'tenantry_v' || row.tenantSchema) {
      findings.push({
        check: 'facing-view-not-invoker',
        severity: 'high',
        object: row.object,
        message: `${row.object} is one of tenantry's tenant-facing (or a tenant's own) views but is not security_invoker: it reads with the rights of its owner ${row.owner}.`,
        fix: `ALTER VIEW ${row.object} SET (security_invoker = true);`,
      });
    } else if (row.kind === 'm') {
      findings.push({
        check: 'matview-over-multi-tenant',
        severity: row.ownerBypasses || row.readable ? 'high' : 'medium',
        object: row.object,
        message: `Materialized view ${row.object} stores rows of multi-tenant tables as its owner ${row.owner} saw them${row.ownerBypasses ? ' (every tenant’s: the owner bypasses row-level security)' : ''}; it has no row-level security of its own${row.readable ? ', and tenant SQL may read it' : ''}.`,
        fix: `DROP MATERIALIZED VIEW ${row.object}; -- or keep it away from tenant roles and the application role`,
      });
    } else {
      findings.push({
        check: 'view-not-invoker',
        severity: row.ownerBypasses ? 'high' : 'medium',
        object: row.object,
        message: `View ${row.object} reads multi-tenant tables without security_invoker: it runs with the rights of its owner ${row.owner}${row.ownerBypasses ? ', who bypasses row-level security, so whoever may read the view reads every tenant’s rows' : ', not of the tenant reading it'}.`,
        fix: `ALTER VIEW ${row.object} SET (security_invoker = true);`,
      });
    }
  }
  return findings;
}
