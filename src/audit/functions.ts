import { dataOids, reachableOids, SYSTEM_SCHEMA, TENANT_SCHEMA, qualifiedRel } from './facts.js';
import type { AuditFacts, Finding, Queryable } from './types.js';

/** `schema.name(args)` of the function with oid `expr`. */
const FN = (expr: string) =>
  `(SELECT format('%I.%I(%s)', fn.nspname, p2.proname, pg_get_function_identity_arguments(p2.oid))
    FROM pg_proc p2 JOIN pg_namespace fn ON fn.oid = p2.pronamespace WHERE p2.oid = ${expr})`;

/**
 * Functions that change the tenant setting, run SQL given as text (which can), or act for other
 * tenants: a tenant's object that calls one is a trap for trusted code (the application role)
 * that reads or writes it. (Matched on deparsed definitions: PostgreSQL records no dependency on
 * built-in functions, so pg_depend cannot find these calls.)
 */
const DANGEROUS_CALL =
  '\\m(set_config|query_to_xml|query_to_xmlschema|query_to_xml_and_xmlschema|cursor_to_xml|cursor_to_xmlschema|ts_stat|ts_rewrite|scan_tenants|set_effective_tenant|dblink|dblink_exec|dblink_send_query)"?\\s*\\(';

/** Every definition of tenants' objects, deparsed: views, defaults, constraints, policies, rules, triggers, routines. */
const TENANT_DEFINITIONS = `
  SELECT ${qualifiedRel('c.oid')} AS object, pg_get_viewdef(c.oid) AS def
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE ${TENANT_SCHEMA} AND c.relkind IN ('v', 'm')
  UNION ALL
  SELECT ${qualifiedRel('c.oid')} || '.' || quote_ident(a.attname) || ' (default)', pg_get_expr(ad.adbin, ad.adrelid)
  FROM pg_attrdef ad JOIN pg_class c ON c.oid = ad.adrelid JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum WHERE ${TENANT_SCHEMA}
  UNION ALL
  SELECT coalesce(${qualifiedRel('k.conrelid')}, format('%I.%I', n.nspname, ty.typname)) || ' constraint ' || quote_ident(k.conname),
         pg_get_constraintdef(k.oid)
  FROM pg_constraint k LEFT JOIN pg_type ty ON ty.oid = k.contypid
  JOIN pg_namespace n ON n.oid = k.connamespace WHERE ${TENANT_SCHEMA}
  UNION ALL
  SELECT ${qualifiedRel('c.oid')} || ' policy ' || quote_ident(p.polname),
         concat_ws(' ', pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid))
  FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE ${TENANT_SCHEMA}
  UNION ALL
  SELECT ${qualifiedRel('c.oid')} || ' rule ' || quote_ident(r.rulename), pg_get_ruledef(r.oid)
  FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE ${TENANT_SCHEMA} AND r.rulename <> '_RETURN'
  UNION ALL
  SELECT ${qualifiedRel('c.oid')} || ' trigger ' || quote_ident(t.tgname), pg_get_triggerdef(t.oid)
  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE ${TENANT_SCHEMA} AND NOT t.tgisinternal
  UNION ALL
  SELECT ${FN('p.oid')}, coalesce(p.prosrc, '')
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE ${TENANT_SCHEMA}`;

/** Regex source matching SQL that reads or writes `table` (bare or schema-qualified). */
function readsTable(schema: string, table: string): RegExp {
  const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(
    `\\b(?:from|join|into|update|table|using)\\s+(?:"?${esc(schema)}"?\\s*\\.\\s*)?"?${esc(table)}"?(?![\\w$"])`,
    'i',
  );
}

interface DefinerRow {
  readonly fn: string;
  readonly owner: string;
  readonly bypasses: boolean;
  readonly callable: boolean;
  readonly source: string;
  readonly depends: boolean;
}

/** SECURITY DEFINER functions outside tenantry's own that read or write multi-tenant tables. */
async function checkDefiners(db: Queryable, facts: AuditFacts): Promise<Finding[]> {
  const { rows } = await db.query<DefinerRow>(
    `SELECT ${FN('p.oid')} AS fn, o.rolname AS owner, o.rolsuper OR o.rolbypassrls AS bypasses,
            p.proacl IS NULL OR EXISTS (SELECT 1 FROM aclexplode(p.proacl) a
                                        WHERE a.grantee = ANY($2::oid[]) AND a.privilege_type = 'EXECUTE') AS callable,
            coalesce(p.prosrc, '') AS source,
            EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                    AND d.refclassid = 'pg_class'::regclass AND d.refobjid = ANY($1::oid[])) AS depends
     FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_roles o ON o.oid = p.proowner
     WHERE p.prosecdef AND NOT ${SYSTEM_SCHEMA} AND n.nspname <> 'tenantry'
       -- tenantry's INSTEAD OF trigger functions of tenants' own views (owned by the application role)
       AND NOT (${TENANT_SCHEMA} AND o.rolname = $3 AND p.proname LIKE '%\\_write')
     ORDER BY 1`,
    [dataOids(facts), reachableOids(facts), facts.roles.app],
  );
  const patterns = facts.registered.map((r) => readsTable(r.schema, r.table));
  return rows
    .filter((row) => row.depends || patterns.some((p) => p.test(row.source)))
    .map((row) => ({
      check: 'definer-reads-multi-tenant',
      severity: row.bypasses ? ('high' as const) : ('medium' as const),
      object: row.fn,
      message: `SECURITY DEFINER function ${row.fn} reads or writes multi-tenant tables as its owner ${row.owner}${row.bypasses ? ', who bypasses row-level security: it sees every tenant’s rows' : ''}${row.callable ? '; tenant SQL may call it' : ''}.`,
      fix: `ALTER FUNCTION ${row.fn} SECURITY INVOKER; -- or REVOKE EXECUTE ON FUNCTION ${row.fn} FROM PUBLIC and check every caller`,
    }));
}

/** tenantry's own functions: owned by its owner role (or the installer), not callable by PUBLIC. */
async function checkOwnFunctions(db: Queryable, facts: AuditFacts): Promise<Finding[]> {
  const { rows } = await db.query<{ fn: string; owner: string; trusted: boolean; public: boolean }>(
    `SELECT ${FN('p.oid')} AS fn, o.rolname AS owner, o.rolname = $1 OR o.rolsuper AS trusted,
            (p.proacl IS NULL OR EXISTS (SELECT 1 FROM aclexplode(p.proacl) a WHERE a.grantee = 0))
              AND p.prorettype NOT IN ('trigger'::regtype, 'event_trigger'::regtype) AS public
     FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_roles o ON o.oid = p.proowner
     WHERE n.nspname = 'tenantry' ORDER BY 1`,
    [facts.roles.owner],
  );
  const findings: Finding[] = [];
  for (const row of rows) {
    if (!row.trusted) {
      findings.push({
        check: 'tenantry-function-owner',
        severity: 'high',
        object: row.fn,
        message: `${row.fn} lives in schema tenantry but is owned by ${row.owner}, neither tenantry's owner role nor a superuser: whoever holds that role can rewrite it.`,
        fix: `ALTER FUNCTION ${row.fn} OWNER TO ${facts.roles.owner}; -- or drop it if tenantry did not create it`,
      });
    }
    if (row.public) {
      findings.push({
        check: 'tenantry-function-public',
        severity: 'medium',
        object: row.fn,
        message: `${row.fn} may be executed by PUBLIC: tenantry grants its functions only to its own roles and tenant groups.`,
        fix: `REVOKE ALL ON FUNCTION ${row.fn} FROM PUBLIC;`,
      });
    }
  }
  return findings;
}

/**
 * Objects of tenants (views, defaults, constraints, policies, rules, triggers, routines in their
 * schemas) that call set_config, run SQL text or act for other tenants. Trusted code reading a
 * tenant's objects under the application role would run them with the power to switch its
 * transaction to another tenant, or read other tenants' rows.
 */
async function checkTenantTraps(db: Queryable): Promise<Finding[]> {
  const { rows } = await db.query<{ object: string; fn: string }>(
    `SELECT DISTINCT object, lower((regexp_match(def, $1, 'i'))[1]) AS fn
     FROM (${TENANT_DEFINITIONS}) AS defs WHERE def ~* $1 ORDER BY 1`,
    [DANGEROUS_CALL],
  );
  return rows.map((row) => ({
    check: 'tenant-object-trap',
    severity: 'high' as const,
    object: row.object,
    message: `${row.object} belongs to a tenant and calls ${row.fn}(): trusted code under the application role that reads or writes it can be switched to another tenant's rows for the rest of its transaction, or handed them.`,
    fix: `Drop ${row.object} (it was written to escape its tenant): tenants' objects may not call set_config or run SQL text.`,
  }));
}

/** Routines in tenants' schemas other than tenantry's trigger functions: their bodies are not checked. */
async function checkTenantRoutines(db: Queryable, facts: AuditFacts): Promise<Finding[]> {
  const { rows } = await db.query<{ fn: string; owner: string }>(
    `SELECT ${FN('p.oid')} AS fn, pg_get_userbyid(p.proowner) AS owner
     FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE ${TENANT_SCHEMA} AND NOT (pg_get_userbyid(p.proowner) = $1 AND p.proname LIKE '%\\_write')
     ORDER BY 1`,
    [facts.roles.app],
  );
  return rows.map((row) => ({
    check: 'tenant-routine',
    severity: 'medium' as const,
    object: row.fn,
    message: `${row.fn} is a routine in a tenant's schema (owner ${row.owner}): tenants' routines run inside trusted sessions too, and tenantry no longer lets tenants create them.`,
    fix: `DROP FUNCTION ${row.fn}; -- or move it out of the tenant's schema after review`,
  }));
}

/** SECURITY DEFINER code, tenantry's own functions, and code tenants left in their schemas. */
export async function checkFunctions(db: Queryable, facts: AuditFacts): Promise<Finding[]> {
  return [
    ...(await checkDefiners(db, facts)),
    ...(await checkOwnFunctions(db, facts)),
    ...(await checkTenantTraps(db)),
    ...(await checkTenantRoutines(db, facts)),
  ];
}
