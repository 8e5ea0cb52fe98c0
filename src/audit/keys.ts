import { dataOids, qualifiedRel } from './facts.js';
import type { AuditFacts, DataTable, Finding, Queryable } from './types.js';

interface IndexRow {
  readonly rel: number;
  readonly index: string;
  readonly uniq: boolean;
  readonly exclusion: boolean;
  readonly constraint: string | null;
  readonly keys: number[];
  readonly tenantAttnum: number;
}

/**
 * Unique and exclusion indexes must include the tenant column (their violations tell one
 * tenant that another holds a key); other indexes should lead with it (an index scan on
 * another column visits other tenants' rows, and EXPLAIN ANALYZE's "Rows Removed by Filter"
 * or the timing shows how many matched).
 */
async function checkIndexes(
  db: Queryable,
  facts: AuditFacts,
  tables: Map<number, DataTable>,
): Promise<Finding[]> {
  const { rows } = await db.query<IndexRow>(
    `SELECT i.indrelid::int AS rel, ${qualifiedRel('i.indexrelid')} AS index, i.indisunique AS uniq,
            i.indisexclusion AS exclusion, con.conname AS constraint,
            (i.indkey::int2[])::int[] AS keys, a.attnum::int AS "tenantAttnum"
     FROM unnest($1::oid[], $2::name[]) AS t(oid, col)
     JOIN pg_index i ON i.indrelid = t.oid
     JOIN pg_attribute a ON a.attrelid = t.oid AND a.attname = t.col
     LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = t.oid
     ORDER BY 2`,
    [dataOids(facts), facts.dataTables.map((t) => t.tenantColumn)],
  );
  const findings: Finding[] = [];
  for (const row of rows) {
    const table = tables.get(row.rel);
    if (!table) continue;
    const col = table.tenantColumn;
    if ((row.uniq || row.exclusion) && !row.keys.includes(row.tenantAttnum)) {
      findings.push({
        check: 'unique-without-tenant',
        severity: 'high',
        object: row.index,
        message: `${row.exclusion ? 'Exclusion' : 'Unique'} index on ${table.name} leaves out the tenant column ${col}: its violations tell one tenant that another tenant holds a key.`,
        fix: row.constraint
          ? `ALTER TABLE ${table.name} DROP CONSTRAINT ${row.constraint}; -- then re-add it with ${col} first`
          : `DROP INDEX ${row.index}; -- then recreate it with ${col} as its first column`,
      });
    } else if (!row.uniq && !row.exclusion && row.keys[0] !== row.tenantAttnum) {
      findings.push({
        check: 'index-not-tenant-led',
        severity: 'medium',
        object: row.index,
        message: `Index on ${table.name} does not start with the tenant column ${col}: a scan through it visits other tenants' rows, and EXPLAIN ANALYZE ("Rows Removed by Filter") or the query's timing reveals how many of them match a tenant's condition.`,
        fix: `DROP INDEX ${row.index}; -- recreate it as (${col}, …), or let tenants ask for one with tenantry.create_tenant_index()`,
      });
    }
  }
  return findings;
}

interface ForeignKeyRow {
  readonly name: string;
  readonly fromRel: number;
  readonly toRel: number;
  readonly fromName: string;
  readonly toName: string;
  readonly fromFirst: string;
  readonly toFirst: string;
}

/**
 * Foreign keys between multi-tenant tables must start with the tenant column on both sides,
 * and no other table may reference a multi-tenant table without it: a foreign-key check runs
 * without row-level security, so its error tells whether another tenant has the key.
 */
async function checkForeignKeys(
  db: Queryable,
  facts: AuditFacts,
  tables: Map<number, DataTable>,
): Promise<Finding[]> {
  const { rows } = await db.query<ForeignKeyRow>(
    `SELECT con.conname AS name, con.conrelid::int AS "fromRel", con.confrelid::int AS "toRel",
            ${qualifiedRel('con.conrelid')} AS "fromName", ${qualifiedRel('con.confrelid')} AS "toName",
            (SELECT attname FROM pg_attribute WHERE attrelid = con.conrelid AND attnum = con.conkey[1]) AS "fromFirst",
            (SELECT attname FROM pg_attribute WHERE attrelid = con.confrelid AND attnum = con.confkey[1]) AS "toFirst"
     FROM pg_constraint con
     WHERE con.contype = 'f' AND con.confrelid = ANY($1::oid[]) ORDER BY 1`,
    [dataOids(facts)],
  );
  const findings: Finding[] = [];
  for (const row of rows) {
    const to = tables.get(row.toRel);
    const from = tables.get(row.fromRel);
    if (!to) continue;
    const toOk = row.toFirst === to.tenantColumn;
    const fromOk = from ? row.fromFirst === from.tenantColumn : false;
    if (toOk && fromOk) continue;
    findings.push({
      check: 'foreign-key-without-tenant',
      severity: 'high',
      object: `${row.name} on ${row.fromName}`,
      message: from
        ? `Foreign key ${row.fromName} -> ${row.toName} does not start with the tenant column on both sides: its errors let one tenant probe another tenant's keys.`
        : `${row.fromName} is not multi-tenant but references the multi-tenant table ${row.toName}: foreign-key checks ignore row-level security, so whoever writes ${row.fromName} learns which keys other tenants hold.`,
      fix: from
        ? `ALTER TABLE ${row.fromName} DROP CONSTRAINT ${row.name}; -- re-add it as FOREIGN KEY (${from.tenantColumn}, …) REFERENCES ${row.toName} (${to.tenantColumn}, …)`
        : `Make ${row.fromName} multi-tenant (tenantry table multi-tenant ${row.fromName}) with the tenant column first in the key, or drop the constraint ${row.name}.`,
    });
  }
  return findings;
}

/** Unique constraints, exclusion constraints, foreign keys and indexes of multi-tenant tables. */
export async function checkKeys(db: Queryable, facts: AuditFacts): Promise<Finding[]> {
  const tables = new Map(facts.dataTables.map((t) => [t.oid, t]));
  return [...(await checkIndexes(db, facts, tables)), ...(await checkForeignKeys(db, facts, tables))];
}
