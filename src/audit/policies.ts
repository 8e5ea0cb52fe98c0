import type { AuditFacts, DataTable, Finding, Queryable } from './types.js';

interface PolicyRow {
  readonly name: string;
  readonly permissive: boolean;
  readonly cmd: string;
  readonly everyone: boolean;
  readonly qual: string | null;
  readonly check: string | null;
}

interface TableRls {
  readonly oid: number;
  readonly rls: boolean;
  readonly forced: boolean;
  readonly col: string;
  readonly policies: PolicyRow[] | null;
}

/** tenantry's policy on every multi-tenant table. */
const ISOLATION_POLICY = 'tenantry_isolation';

/**
 * Whether `qual` is one of the shapes tenantry writes: the tenant column equal to the current
 * tenant (`tenantry.current_tenant()`, or since catalog version 26 `tenantry.segment_tenant()`,
 * which checks the allocation; version 9's form had `OR tenantry.allocated()`), or — on a
 * grouped table — one of the current tenant's segments. Anything else (an `OR`, a constant,
 * another column) is not tenantry's.
 */
export function isTenantryQual(qual: string | null, col: string, grouped: boolean): boolean {
  if (qual === null) return false;
  const dense = qual.replace(/\s+/g, '');
  const c = col.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const segments = new RegExp(
    `^\\(${c}=ANY\\(\\(SELECTtenantry\\.segments\\('[^']+'::text\\)ASsegments\\)::integer\\[\\]\\)\\)$`,
  );
  if (grouped && segments.test(dense)) return true;
  const spaced = qual.replace(/\s+/g, ' ');
  const ors = spaced.split(' OR ').length - 1;
  const allowedOrs = spaced.split(' OR tenantry.allocated(').length - 1;
  if (ors !== allowedOrs || allowedOrs > 1) return false;
  return (
    dense.startsWith(`(${col}=(SELECT`) &&
    (dense.includes('tenantry.current_tenant()') || dense.includes('tenantry.segment_tenant('))
  );
}

function finding(table: DataTable, check: string, message: string, fix: string): Finding {
  return { check, severity: 'high', object: table.name, message, fix };
}

function reregister(table: DataTable): string {
  return table.copyOf === null
    ? `SELECT tenantry.multi_tenant('${table.base}', '${table.tenantColumn}');`
    : `ALTER TABLE ${table.name} ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY; then re-provision the schema tenant (tenantry.provision_table) to restore its policy.`;
}

/** Multi-tenant tables (and schema tenants' copies) must enforce, force and keep tenantry's policy. */
export async function checkPolicies(db: Queryable, facts: AuditFacts): Promise<Finding[]> {
  const tables = new Map(facts.dataTables.map((t) => [t.oid, t]));
  const { rows } = await db.query<TableRls>(
    `SELECT c.oid::int AS oid, c.relrowsecurity AS rls, c.relforcerowsecurity AS forced, quote_ident(t.col) AS col,
            (SELECT json_agg(json_build_object('name', p.polname, 'permissive', p.polpermissive,
                     'cmd', p.polcmd::text, 'everyone', p.polroles = '{0}',
                     'qual', pg_get_expr(p.polqual, p.polrelid), 'check', pg_get_expr(p.polwithcheck, p.polrelid)))
             FROM pg_policy p WHERE p.polrelid = c.oid) AS policies
     FROM unnest($1::oid[], $2::name[]) AS t(oid, col) JOIN pg_class c ON c.oid = t.oid`,
    [facts.dataTables.map((t) => t.oid), facts.dataTables.map((t) => t.tenantColumn)],
  );
  const findings: Finding[] = [];
  for (const row of rows) {
    const table = tables.get(row.oid);
    if (!table) continue;
    if (!row.rls) {
      findings.push(
        finding(
          table,
          'rls-disabled',
          'Row-level security is disabled: every role with a privilege on the table reads and writes every tenant’s rows.',
          `ALTER TABLE ${table.name} ENABLE ROW LEVEL SECURITY;`,
        ),
      );
    }
    if (!row.forced) {
      findings.push(
        finding(
          table,
          'rls-not-forced',
          'Row-level security is not forced: the table’s owner (and SECURITY DEFINER code or views it owns) bypasses the tenant policy.',
          `ALTER TABLE ${table.name} FORCE ROW LEVEL SECURITY;`,
        ),
      );
    }
    const policies = row.policies ?? [];
    const own = policies.find((p) => p.name === ISOLATION_POLICY);
    if (!own) {
      findings.push(
        finding(
          table,
          'policy-missing',
          `tenantry's policy ${ISOLATION_POLICY} is missing: no row matches any tenant, or another policy decides who sees what.`,
          reregister(table),
        ),
      );
    } else if (
      !own.permissive ||
      own.cmd !== '*' ||
      !own.everyone ||
      !isTenantryQual(own.qual, row.col, table.grouped) ||
      own.check !== own.qual
    ) {
      findings.push(
        finding(
          table,
          'policy-altered',
          `tenantry's policy ${ISOLATION_POLICY} was changed: it no longer compares the tenant column ${table.tenantColumn} with the current tenant for every command and role.`,
          reregister(table),
        ),
      );
    }
    for (const extra of policies.filter((p) => p.permissive && p.name !== ISOLATION_POLICY)) {
      findings.push(
        finding(
          table,
          'policy-extra-permissive',
          `Permissive policy ${extra.name} is OR-ed with tenantry's: rows it admits are visible to (or writable by) every tenant it applies to.`,
          `DROP POLICY ${extra.name} ON ${table.name}; -- or make it AS RESTRICTIVE`,
        ),
      );
    }
  }
  return findings;
}
