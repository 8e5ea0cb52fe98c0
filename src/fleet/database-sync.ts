import pg from 'pg';
import { installDatabaseRights } from '../isolation/database-rights.js';
import {
  copyTable,
  importShared,
  syncSequences,
  type DatabasePlan,
  type SequenceDef,
  type TableCopy,
} from '../isolation/database.js';
import type { Queryable } from './fleet-store.js';

/** What a tenant database copies from the catalog: table definitions, global tables, sequences. */
export interface RegistryPlan {
  readonly tables: readonly TableCopy[];
  readonly shared: readonly { readonly schema: string; readonly table: string }[];
  readonly sequences: readonly SequenceDef[];
  /** Where and as whom postgres_fdw reads the global tables. */
  readonly fdw: DatabasePlan['fdw'];
}

const isForeignKey = (statement: string) => /^ALTER TABLE .* FOREIGN KEY/.test(statement);

/**
 * A grouped table's tenant column defaults to `tenantry.current_segment(…)`, which tenant
 * databases do not have (groups are shared-only); copyTable sets the column's default anyway.
 */
export function withoutSegmentDefaults(statements: readonly string[]): string[] {
  return statements.map((s) => s.replace(/ DEFAULT tenantry\.current_segment\('(?:[^']|'')*'::text\)/g, ''));
}

/** Reads the registry's definitions from the catalog database (as DatabaseProvisioner does). */
export async function readRegistryPlan(db: Queryable, fdw: DatabasePlan['fdw']): Promise<RegistryPlan> {
  const { rows } = await db.query<{
    schema_name: string;
    table_name: string;
    kind: 'multi_tenant' | 'shared';
    tenant_column: string | null;
    ddl: string[] | null;
  }>(
    `SELECT schema_name, table_name, kind, tenant_column,
            CASE WHEN kind = 'multi_tenant'
                 THEN tenantry.table_ddl(format('%I.%I', schema_name, table_name)::regclass) END AS ddl
     FROM tenantry.registered_table ORDER BY schema_name, table_name`,
  );
  const tables: TableCopy[] = [];
  const shared: { schema: string; table: string }[] = [];
  for (const row of rows) {
    if (row.kind === 'shared') {
      shared.push({ schema: row.schema_name, table: row.table_name });
      continue;
    }
    const ddl = row.ddl ?? [];
    tables.push({
      schema: row.schema_name,
      table: row.table_name,
      tenantColumn: row.tenant_column ?? 'tenant_id',
      create: withoutSegmentDefaults(ddl.filter((s) => !isForeignKey(s))),
      foreignKeys: ddl.filter(isForeignKey),
    });
  }
  const { rows: sequences } = await db.query<SequenceDef>(
    'SELECT name, kind, start::text AS start, increment::text AS increment FROM tenantry.sequence ORDER BY name',
  );
  return { tables, shared, sequences, fdw };
}

/**
 * Brings the tenant database `client` is connected to up to the registry, inside the caller's
 * transaction: copies of the multi-tenant tables it lacks (`only`: just these `schema.table`
 * keys) with their foreign keys, foreign tables for global tables, sequence definitions.
 */
export async function syncDatabase(
  client: pg.ClientBase,
  grantees: { appRole: string; role: string },
  plan: RegistryPlan,
  only?: ReadonlySet<string>,
): Promise<void> {
  await installDatabaseRights(client, grantees);
  const tables = plan.tables.filter((t) => !only || only.has(`${t.schema}.${t.table}`));
  for (const table of tables) await copyTable(client, grantees, table);
  for (const table of tables) {
    for (const statement of table.foreignKeys) {
      const name = /ADD CONSTRAINT (\S+)/.exec(statement)?.[1]?.replace(/^"|"$/g, '');
      const exists = await client.query(
        'SELECT 1 FROM pg_constraint WHERE conname = $1 AND conrelid = to_regclass($2)',
        [name, `${pg.escapeIdentifier(table.schema)}.${pg.escapeIdentifier(table.table)}`],
      );
      if (!exists.rowCount) await client.query(statement);
    }
  }
  await importShared(client, { ...grantees, shared: plan.shared, fdw: plan.fdw });
  await syncSequences(client, plan.sequences);
}
