import { dataOids, qualifiedRel } from './facts.js';
import type { AuditFacts, Finding, Queryable } from './types.js';

/** tenantry's event triggers: tenants' DDL rules, rights of read/write users, the routine ban. */
const EVENT_TRIGGERS = [
  'tenantry_tenant_ddl_start',
  'tenantry_tenant_ddl_end',
  'tenantry_rights_ddl',
  'tenantry_rights_tables',
  'tenantry_rights_drop',
  'tenantry_rights_extensions',
  'tenantry_tenant_routines',
  'tenantry_tenant_settings',
] as const;

/** Event triggers missing or disabled: the rules they enforce on tenants' DDL are off. */
async function checkEventTriggers(db: Queryable): Promise<Finding[]> {
  const { rows } = await db.query<{ name: string; enabled: string }>(
    'SELECT evtname AS name, evtenabled AS enabled FROM pg_event_trigger WHERE evtname = ANY($1::name[])',
    [EVENT_TRIGGERS],
  );
  const state = new Map(rows.map((r) => [r.name, r.enabled]));
  const findings: Finding[] = [];
  for (const name of EVENT_TRIGGERS) {
    const enabled = state.get(name);
    if (enabled !== undefined && enabled !== 'D') continue;
    findings.push({
      check: 'event-trigger-off',
      severity: 'high',
      object: `event trigger ${name}`,
      message: `tenantry's event trigger ${name} is ${enabled === undefined ? 'missing' : 'disabled'}: the rules it enforces on tenants' schema changes (views, routines, rights of read and write users) are off.`,
      fix:
        enabled === undefined
          ? 'Reinstall the catalog migrations (createTenantry with install) or restore the trigger from src/sql.'
          : `ALTER EVENT TRIGGER ${name} ENABLE;`,
    });
  }
  return findings;
}

/**
 * The first wall (docs/rights.md): advisory locks, pg_notify() and the views of other sessions
 * are revoked from PUBLIC in the catalog database.
 */
async function checkBuiltins(db: Queryable, facts: AuditFacts): Promise<Finding[]> {
  const { rows } = await db.query<{ object: string }>(
    `SELECT p.oid::regprocedure::text AS object FROM pg_proc p
     WHERE p.oid IN ('pg_catalog.pg_advisory_lock(bigint)'::regprocedure, 'pg_catalog.pg_try_advisory_lock(bigint)'::regprocedure,
                     'pg_catalog.pg_notify(text,text)'::regprocedure, 'pg_catalog.pg_stat_get_activity(integer)'::regprocedure)
       AND (p.proacl IS NULL OR EXISTS (SELECT 1 FROM aclexplode(p.proacl) a WHERE a.grantee = 0))
     UNION ALL
     SELECT 'pg_catalog.' || c.relname FROM pg_class c
     WHERE c.oid IN ('pg_catalog.pg_stat_activity'::regclass, 'pg_catalog.pg_locks'::regclass)
       AND (c.relacl IS NULL OR EXISTS (SELECT 1 FROM aclexplode(c.relacl) a WHERE a.grantee = 0))
     ORDER BY 1`,
  );
  return rows.map((row) => ({
    check: 'first-wall-down',
    severity: 'medium' as const,
    object: row.object,
    message: `${row.object} is open to PUBLIC: tenant roles can take cluster-wide advisory locks, notify, or watch other tenants' sessions.`,
    fix: `SELECT tenantry.restrict_builtins(ARRAY['${facts.roles.owner}', '${facts.roles.app}', '${facts.roles.maint}']::name[]);`,
  }));
}

interface DefaultRow {
  readonly object: string;
  readonly rel: number;
  readonly column: string;
  readonly expr: string | null;
  readonly identity: boolean;
  /** The column draws from a sequence it owns (identity, or a serial's nextval default). */
  readonly owned: boolean;
}

/**
 * Sequences shared by tenants' rows: a serial or identity column (a PostgreSQL sequence), or a
 * default drawing from one, numbers every tenant's rows from one counter — the values and
 * their gaps tell a tenant how many rows others insert, and when. tenantry's multi-tenant
 * sequences (tenantry.next) count per tenant; its shared ones are sanctioned on grouped tables,
 * whose members share a segment. A schema tenant's copy that owns its sequence (its own serial or
 * identity column) counts that tenant's rows only.
 */
async function checkSequences(db: Queryable, facts: AuditFacts): Promise<Finding[]> {
  const tables = new Map(facts.dataTables.map((t) => [t.oid, t]));
  const { rows } = await db.query<DefaultRow>(
    `SELECT ${qualifiedRel('a.attrelid')} AS object, a.attrelid::int AS rel, quote_ident(a.attname) AS "column",
            pg_get_expr(ad.adbin, ad.adrelid) AS expr, a.attidentity <> '' AS identity,
            CASE WHEN s.seq IS NULL THEN false WHEN a.attidentity <> '' THEN true
                 ELSE EXISTS (SELECT 1 FROM pg_depend d
                              WHERE d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid
                                AND d.refclassid = 'pg_class'::regclass AND d.refobjid = s.seq::regclass) END AS owned
     FROM pg_attribute a LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
     CROSS JOIN LATERAL (SELECT pg_get_serial_sequence(a.attrelid::regclass::text, a.attname) AS seq) s
     WHERE a.attrelid = ANY($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
       AND (a.attidentity <> '' OR ad.adbin IS NOT NULL) ORDER BY 1, 3`,
    [dataOids(facts)],
  );
  const findings: Finding[] = [];
  for (const row of rows) {
    const table = tables.get(row.rel);
    const next = row.expr ? /tenantry\.next\('([a-z0-9_]+)'/.exec(row.expr)?.[1] : undefined;
    // A schema tenant's copy drawing from a sequence it owns numbers that tenant's rows only.
    const ownCopy = table !== undefined && table.copyOf !== null && row.owned;
    if (!ownCopy && (row.identity || (row.expr !== null && /\bnextval\(/.test(row.expr)))) {
      findings.push({
        check: 'sequence-shared',
        severity: 'medium',
        object: `${row.object}.${row.column}`,
        message: `${row.object}.${row.column} draws from a PostgreSQL sequence that numbers every tenant's rows: the values a tenant gets (and their gaps) reveal how many rows other tenants insert, and when; tenant roles may also read its last value.`,
        fix: `tenantry sequence create <name>; ALTER TABLE ${row.object} ALTER COLUMN ${row.column} ${row.identity ? 'DROP IDENTITY, ALTER COLUMN ' + row.column + ' ' : ''}SET DEFAULT tenantry.next('<name>');`,
      });
    } else if (next !== undefined && facts.sequences.get(next) === 'shared' && table && !table.grouped) {
      findings.push({
        check: 'sequence-shared',
        severity: 'low',
        object: `${row.object}.${row.column}`,
        message: `${row.object}.${row.column} draws from tenantry's shared sequence ${next}, which numbers across tenants (sanctioned for grouped tables only): its values reveal other tenants' inserts.`,
        fix: `Use a multi-tenant sequence: tenantry sequence create ${next}_t; ALTER TABLE ${row.object} ALTER COLUMN ${row.column} SET DEFAULT tenantry.next('${next}_t');`,
      });
    }
  }
  return findings;
}

/** The first wall, tenantry's event triggers, and sequences shared across tenants. */
export async function checkWall(db: Queryable, facts: AuditFacts): Promise<Finding[]> {
  return [
    ...(await checkEventTriggers(db)),
    ...(await checkBuiltins(db, facts)),
    ...(await checkSequences(db, facts)),
  ];
}
