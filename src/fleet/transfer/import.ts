import type { Readable } from 'node:stream';
import pg from 'pg';
import { tenantFaceSchema, type Tenant, type TenantIsolation } from '../../catalog/index.js';
import { TenantryError } from '../../errors.js';
import { tenantChecksums, type TableChecksum } from './checksum.js';
import { checkAborted } from './copy-rows.js';
import { corrupt, parseRecord, type HeaderRecord, type IndexRecord, type ViewRecord } from './format.js';
import type { TransferHost, TransferProgress } from './host.js';
import { createViewSql } from './objects.js';
import { readLines } from './line-source.js';
import { withPlacementClient, type TransferTable } from './placement.js';
import { restoreRows, type RestoredRows } from './restore-rows.js';
import { StagingTenant, sweepStaleImports } from './staging.js';
import { readTransferTables } from './tables.js';

/** Options of {@link importTenant}. */
export interface ImportOptions {
  /** The new tenant's name (must be free). */
  readonly as: string;
  /** Where its rows go (default: the exported tenant's isolation model). */
  readonly isolation?: TenantIsolation;
  /** Registered server of a database tenant (default `main`). */
  readonly server?: string;
  /** Give a shared tenant its own login role (default: when a master key is configured). */
  readonly loginRole?: boolean;
  /** Rows per INSERT (default 1000). */
  readonly batchSize?: number;
  /** Stops between batches with `TENANTRY_ERR_TRANSFER_INTERRUPTED`; nothing is kept. */
  readonly signal?: AbortSignal;
  /** Called after each batch and phase. */
  readonly onProgress?: (event: TransferProgress) => void;
}

/** What {@link importTenant} restored. */
export interface ImportSummary {
  /** The new tenant, active. */
  readonly tenant: Tenant;
  /** Per table: rows restored and their checksum (equal to the file's). */
  readonly tables: readonly TableChecksum[];
  /** Objects restored: indexes, views, sequence and serial values. */
  readonly objects: number;
  /** Leftovers of killed imports removed on the way (their staging names). */
  readonly removedLeftovers: readonly string[];
}

const NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,62}$/;
const OUTCOME = 'nothing was kept: the partly imported tenant was removed';

/**
 * Restores a tenant from an export stream (see {@link exportTenant}) as a new tenant named
 * `options.as`, placed `options.isolation` (shared, schema or database) on `options.server`:
 * its rows of every multi-tenant table, per-tenant columns, tenant indexes, own views and
 * sequence values. The rows go in in one transaction, checked against the file's checksums and
 * then against the restored rows' own (`tenantChecksums`) before it commits; the tenant is filled
 * under a locked staging name and only renamed and made active at the end, so a failed,
 * interrupted or killed import leaves no tenant behind (a killed one's leftover is removed by the
 * next import). Throws `TENANTRY_ERR_INVALID_ARGUMENT`, `TENANTRY_ERR_TENANT_EXISTS`,
 * `TENANTRY_ERR_SERVER_NOT_FOUND`, `TENANTRY_ERR_TRANSFER_CORRUPT` (damaged or truncated file),
 * `TENANTRY_ERR_TRANSFER_FORMAT` (another format version), `TENANTRY_ERR_TRANSFER_SHAPE` (tables
 * differ from the file's), `TENANTRY_ERR_TRANSFER_CHECKSUM` and `TENANTRY_ERR_TRANSFER_INTERRUPTED`.
 */
export async function importTenant(
  host: TransferHost,
  input: Readable | AsyncIterable<Buffer | string>,
  options: ImportOptions,
): Promise<ImportSummary> {
  if (typeof options.as !== 'string' || !NAME.test(options.as)) {
    throw new TenantryError('INVALID_ARGUMENT', {
      what: 'tenant name',
      problem: `${JSON.stringify(options.as)} must start with a letter and hold only letters, digits, _ . - (at most 63)`,
    });
  }
  const lines = readLines(input)[Symbol.asyncIterator]();
  let lineNo = 0;
  const next = async (): Promise<string | undefined> => {
    const r = await lines.next();
    if (r.done) return undefined;
    lineNo++;
    return r.value;
  };
  try {
    const first = await next();
    if (first === undefined) corrupt('it is empty');
    const header = parseRecord(first, 1);
    if (header.type !== 'header') corrupt('it does not start with a header');
    checkHeader(header);
    await ensureNameFree(host, options.as);
    const isolation = options.isolation ?? header.source.isolation;
    return await withPlacementClient(
      host,
      { isolation: 'shared', server: 'main', databaseName: null },
      async (catalog) => {
        const removed = await sweepStaleImports(host, catalog);
        const registered = new Map(
          (await readTransferTables(catalog)).map((t) => [`${t.schema}.${t.table}`, t]),
        );
        const tables: TransferTable[] = header.tables.map((spec) => {
          const table = registered.get(spec.table);
          if (!table || table.tenantColumn !== spec.tenantColumn) {
            throw new TenantryError('TRANSFER_SHAPE', {
              table: spec.table,
              problem: table
                ? `its tenant column is ${table.tenantColumn} here, ${spec.tenantColumn} in the export`
                : 'it is not a registered multi-tenant table here',
            });
          }
          return table;
        });
        checkAborted(options.signal, 'import', 'nothing was created');
        const staging = await StagingTenant.create(host, catalog, {
          isolation,
          server: options.server ?? 'main',
          loginRole: options.loginRole ?? (isolation === 'shared' && host.config.masterKey !== undefined),
        });
        try {
          const restored = await fill(
            host,
            catalog,
            staging.tenant,
            header,
            tables,
            { next, lineNo: () => lineNo },
            options,
          );
          checkAborted(options.signal, 'import', OUTCOME);
          const tenant = await staging.activate(options.as);
          options.onProgress?.({ phase: 'done', rows: restored.rows, totalRows: restored.rows });
          return {
            tenant,
            tables: restored.tables,
            objects: restored.objects.length,
            removedLeftovers: removed,
          };
        } catch (error) {
          await staging.discard().catch(() => undefined);
          throw error;
        }
      },
    );
  } finally {
    await lines.return?.(undefined).catch(() => undefined);
  }
}

/** Checks the header's table list has the fields the import reads. */
function checkHeader(header: HeaderRecord): void {
  for (const spec of header.tables as readonly unknown[]) {
    const s = spec as Record<string, unknown>;
    if (
      typeof s.table !== 'string' ||
      typeof s.tenantColumn !== 'string' ||
      !Array.isArray(s.columns) ||
      !Array.isArray(s.extraColumns) ||
      typeof s.rows !== 'number'
    ) {
      corrupt('the header’s table list is malformed');
    }
  }
  const isolation = header.source.isolation;
  if (isolation !== 'shared' && isolation !== 'schema' && isolation !== 'database') {
    corrupt(`the header names an unknown isolation ${JSON.stringify(isolation)}`);
  }
}

async function ensureNameFree(host: TransferHost, name: string): Promise<void> {
  try {
    await host.tenants.show(name);
  } catch (error) {
    if (error instanceof TenantryError && error.code === 'TENANTRY_ERR_TENANT_NOT_FOUND') return;
    throw error;
  }
  throw new TenantryError('TENANT_EXISTS', { tenant: name });
}

/** Fills the staging tenant: extra columns, rows (one transaction), then indexes and views. */
async function fill(
  host: TransferHost,
  catalog: pg.Client,
  tenant: Tenant,
  header: HeaderRecord,
  tables: readonly TransferTable[],
  source: { next: () => Promise<string | undefined>; lineNo: () => number },
  options: ImportOptions,
): Promise<RestoredRows> {
  const asTenant = <T>(
    fn: (db: { query: (sql: string, values?: unknown[]) => Promise<pg.QueryResult> }) => Promise<T>,
  ) =>
    host.withTenant(tenant.id, (db) => fn({ query: (sql, values) => db.query(sql, values) }), {
      allowLocked: true,
    });
  for (const spec of header.tables) {
    for (const column of spec.extraColumns) {
      await asTenant((db) =>
        db.query('SELECT tenantry.add_tenant_column($1, $2, $3)', [spec.table, column.name, column.type]),
      );
    }
  }
  const restore = (target: pg.ClientBase) =>
    restoreRows(target, tenant, header, tables, source, {
      ...(options.batchSize === undefined ? {} : { batchSize: options.batchSize }),
      ...(options.signal === undefined ? {} : { signal: options.signal }),
      ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }),
      verify: (db) => tenantChecksums(db, tenant, tables),
    });
  const restored =
    tenant.isolation === 'database'
      ? await withPlacementClient(host, tenant, restore)
      : await restore(catalog);
  checkAborted(options.signal, 'import', OUTCOME);
  const indexes = restored.objects.filter((o): o is IndexRecord => o.type === 'index');
  for (const index of indexes) {
    await asTenant((db) =>
      db.query('SELECT tenantry.create_tenant_index($1, $2::text[])', [index.table, index.columns]),
    );
  }
  await createViews(
    asTenant,
    tenantFaceSchema(tenant.uuid),
    restored.objects.filter((o): o is ViewRecord => o.type === 'view'),
  );
  return restored;
}

/** Creates the views in rounds, so that one built on another comes after it whatever the order. */
async function createViews(
  asTenant: <T>(fn: (db: { query: (sql: string) => Promise<pg.QueryResult> }) => Promise<T>) => Promise<T>,
  face: string,
  views: readonly ViewRecord[],
): Promise<void> {
  let pending = views;
  while (pending.length > 0) {
    const failed: { view: ViewRecord; error: unknown }[] = [];
    for (const view of pending) {
      try {
        await asTenant((db) => db.query(createViewSql(face, view)));
      } catch (error) {
        failed.push({ view, error });
      }
    }
    if (failed.length === pending.length) {
      const { view, error } = failed[0] as { view: ViewRecord; error: unknown };
      throw new TenantryError(
        'TRANSFER_SHAPE',
        { table: `view ${view.name}`, problem: error instanceof Error ? error.message : String(error) },
        { cause: error },
      );
    }
    pending = failed.map((f) => f.view);
  }
}
