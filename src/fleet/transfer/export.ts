import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import pg from 'pg';
import { tenantFaceSchema, type Tenant, type TenantRef } from '../../catalog/index.js';
import { TenantryError } from '../../errors.js';
import { RowDigest, type TableChecksum } from './checksum.js';
import { checkAborted, readTenantRows } from './copy-rows.js';
import {
  EXPORT_FORMAT,
  EXPORT_FORMAT_VERSION,
  rowLine,
  tenantryVersion,
  type ExportRecord,
  type HeaderRecord,
  type ObjectRecord,
  type TableSpec,
} from './format.js';
import { readExtraColumns, readIndexes, readSequenceValues, readSerials, readViews } from './objects.js';
import {
  PORTABLE_SETTINGS,
  readSegment,
  readShape,
  tableKey,
  withPlacementClient,
  type TableShape,
  type TenantPlacement,
  type TransferTable,
} from './placement.js';
import { readTransferTables, soleGroupSegments } from './tables.js';
import type { TransferHost, TransferProgress } from './host.js';

/** Options of {@link exportTenant}. */
export interface ExportOptions {
  /** Rows read per batch (default 1000). */
  readonly batchSize?: number;
  /** Gzip the stream (default true); the importer reads both. */
  readonly gzip?: boolean;
  /** Stops between batches with `TENANTRY_ERR_TRANSFER_INTERRUPTED` (the stream is destroyed). */
  readonly signal?: AbortSignal;
  /** Called after each batch and phase. */
  readonly onProgress?: (event: TransferProgress) => void;
}

/** What {@link exportTenant} wrote. */
export interface ExportSummary {
  readonly tenant: string;
  readonly isolation: Tenant['isolation'];
  /** Per table: rows written and their checksum (as in the file's trailer). */
  readonly tables: readonly TableChecksum[];
  /** Object records written: indexes, views, sequence and serial values. */
  readonly objects: number;
}

/** Writes lines to a (gzip) stream, waiting when it is full. */
class LineWriter {
  readonly #stream: NodeJS.WritableStream & { destroyed: boolean };
  constructor(stream: NodeJS.WritableStream & { destroyed: boolean }) {
    this.#stream = stream;
  }
  async line(text: string): Promise<void> {
    if (!this.#stream.write(`${text}\n`)) await once(this.#stream, 'drain');
  }
  async record(record: ExportRecord): Promise<void> {
    await this.line(JSON.stringify(record));
  }
}

/** Refuses tenants that have no rows of their own to export. */
function checkExportable(tenant: Tenant): void {
  if (tenant.kind !== 'regular') {
    throw new TenantryError('TENANT_KIND', {
      tenant: tenant.name,
      kind: tenant.kind,
      problem:
        'only regular tenants are exported (a super tenant has no rows, the default tenant is the installation’s own)',
    });
  }
}

/**
 * Writes all of tenant `ref`'s rows of every multi-tenant table and its own objects — per-tenant
 * columns, tenant indexes, tenant-specific views, multi-tenant sequence values, serial positions —
 * to `writable` in the portable export format (docs/fleet.md, "Export and restore"): gzip'd JSON
 * lines, read in one REPEATABLE READ snapshot, so the file is one consistent moment of the tenant
 * while it stays online. Use it for backups of one tenant, or with {@link importTenant} to copy a
 * tenant to another name, isolation model, server or installation. `writable` is ended when done
 * and destroyed on failure. Throws `TENANTRY_ERR_TENANT_NOT_FOUND`, `TENANTRY_ERR_TENANT_KIND`,
 * `TENANTRY_ERR_TRANSFER_GROUPED` (rows shared with other group members) and
 * `TENANTRY_ERR_TRANSFER_INTERRUPTED`.
 */
export async function exportTenant(
  host: TransferHost,
  ref: TenantRef,
  writable: Writable,
  options: ExportOptions = {},
): Promise<ExportSummary> {
  const tenant = await host.tenants.show(ref);
  checkExportable(tenant);
  const [tables, segments] = await withPlacementClient(
    host,
    { ...tenant, isolation: 'shared', server: 'main' },
    async (c) => [await readTransferTables(c), await soleGroupSegments(c, tenant)] as const,
  );
  const placement: TenantPlacement = {
    id: tenant.id,
    isolation: tenant.isolation,
    schemaName: tenant.schemaName,
    segments,
  };
  const gzip = options.gzip === false ? undefined : createGzip();
  const sink = gzip ?? writable;
  const done = gzip ? pipeline(gzip, writable) : undefined;
  done?.catch(() => undefined);
  try {
    const summary = await withPlacementClient(host, tenant, async (client) => {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      try {
        for (const [name, value] of Object.entries(PORTABLE_SETTINGS)) {
          await client.query('SELECT set_config($1, $2, true)', [name, value]);
        }
        return await writeTenant(client, tenant, placement, tables, new LineWriter(sink), options);
      } finally {
        await client.query('ROLLBACK').catch(() => undefined);
      }
    });
    sink.end();
    if (done) await done;
    else if (!writable.writableFinished) await once(writable, 'finish');
    return summary;
  } catch (error) {
    const reason = error instanceof Error ? error : new Error(String(error));
    gzip?.destroy(reason);
    writable.destroy(reason);
    throw error;
  }
}

async function writeTenant(
  client: pg.Client,
  tenant: Tenant,
  placement: TenantPlacement,
  tables: readonly TransferTable[],
  out: LineWriter,
  options: ExportOptions,
): Promise<ExportSummary> {
  const outcome = 'the export stream was destroyed (the CLI removes its partial file)';
  const extras = await readExtraColumns(client, tenant.id);
  const shapes = new Map<string, TableShape>();
  const specs: TableSpec[] = [];
  for (const table of tables) {
    const key = tableKey(table);
    const shape = await readShape(client, placement, table);
    shapes.set(key, shape);
    const { rows } = await client.query<{ n: string }>(
      `SELECT count(*)::text AS n FROM ${shape.relation} WHERE ${pg.escapeIdentifier(shape.tenantColumn)} = $1`,
      [readSegment(placement, table)],
    );
    if (placement.segments?.has(key)) await refuseOwnRowsBesideGroup(client, tenant, shape, key);
    specs.push({
      table: key,
      schema: table.schema,
      name: table.table,
      tenantColumn: table.tenantColumn,
      columns: shape.columns.map((c) => ({ name: c.name, type: c.type })),
      primaryKey: shape.primaryKey,
      extraColumns: extras.get(key) ?? [],
      rows: Number(rows[0]?.n ?? 0),
    });
  }
  const { rows: version } = await client.query<{ v: string }>(
    "SELECT current_setting('server_version') AS v",
  );
  const header: HeaderRecord = {
    type: 'header',
    format: EXPORT_FORMAT,
    formatVersion: EXPORT_FORMAT_VERSION,
    tenantry: tenantryVersion(),
    createdAt: new Date().toISOString(),
    source: {
      tenant: tenant.name,
      id: tenant.id,
      uuid: tenant.uuid,
      isolation: tenant.isolation,
      server: tenant.server,
      postgres: version[0]?.v ?? '',
    },
    settings: PORTABLE_SETTINGS,
    tables: specs,
  };
  await out.record(header);
  const totalRows = specs.reduce((n, s) => n + s.rows, 0);
  let done = 0;
  const written: TableChecksum[] = [];
  for (const table of tables) {
    const key = tableKey(table);
    const shape = shapes.get(key) as TableShape;
    await out.record({ type: 'table', table: key });
    const digest = new RowDigest();
    for await (const batch of readTenantRows(client, shape, readSegment(placement, table), options)) {
      checkAborted(options.signal, 'export', outcome);
      for (const row of batch) {
        digest.add(row);
        await out.line(rowLine(row));
      }
      done += batch.length;
      options.onProgress?.({ phase: 'rows', table: key, rows: done, totalRows });
    }
    await out.record({ type: 'table-end', table: key, rows: digest.rows, checksum: digest.checksum });
    written.push({ table: key, rows: digest.rows, checksum: digest.checksum });
  }
  checkAborted(options.signal, 'export', outcome);
  options.onProgress?.({ phase: 'objects', rows: done, totalRows });
  const objects: ObjectRecord[] = [];
  for (const table of tables) {
    const key = tableKey(table);
    objects.push(...(await readIndexes(client, placement, table, key)));
    if (tenant.isolation !== 'shared')
      objects.push(...(await readSerials(client, shapes.get(key) as TableShape, key)));
  }
  objects.push(...(await readSequenceValues(client, tenant.id)));
  objects.push(
    ...(await readViews(
      client,
      tenantFaceSchema(tenant.uuid),
      tables.map((t) => t.table),
    )),
  );
  for (const record of objects) await out.record(record);
  await out.record({
    type: 'trailer',
    tables: Object.fromEntries(written.map((w) => [w.table, { rows: w.rows, checksum: w.checksum }])),
    objects: objects.length,
  });
  options.onProgress?.({ phase: 'done', rows: done, totalRows });
  return { tenant: tenant.name, isolation: tenant.isolation, tables: written, objects: objects.length };
}

/** A sole group member with rows in its own segment too: the two cannot become one. */
async function refuseOwnRowsBesideGroup(client: pg.Client, tenant: Tenant, shape: TableShape, key: string) {
  const { rows } = await client.query<{ found: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM ${shape.relation} WHERE ${pg.escapeIdentifier(shape.tenantColumn)} = $1) AS found`,
    [tenant.id],
  );
  if (rows[0]?.found) {
    throw new TenantryError('TRANSFER_GROUPED', {
      tenant: tenant.name,
      table: key,
      group: 'its group',
      problem: 'it has rows in its own segment besides the group’s',
    });
  }
}
