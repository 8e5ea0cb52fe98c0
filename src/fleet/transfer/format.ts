import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TenantIsolation } from '../../catalog/index.js';
import { TenantryError } from '../../errors.js';

/** The `format` field of every export file's header. */
export const EXPORT_FORMAT = 'tenantry-tenant-export';

/** The format version this build writes and reads (docs/fleet.md, "Export and restore"). */
export const EXPORT_FORMAT_VERSION = 1;

/** A column of a multi-tenant table, as the export file's header lists it. */
export interface ColumnSpec {
  readonly name: string;
  /** `format_type()` of its type, e.g. `integer`, `character varying(20)`. */
  readonly type: string;
}

/** One multi-tenant table in the export file's header. */
export interface TableSpec {
  /** `schema.table` (unquoted). */
  readonly table: string;
  readonly schema: string;
  readonly name: string;
  readonly tenantColumn: string;
  /** Its columns but the tenant column and `tenantry_ext`, in table order. */
  readonly columns: readonly ColumnSpec[];
  /** Its primary-key columns after the tenant column (the order rows are written in). */
  readonly primaryKey: readonly string[];
  /** The tenant's per-tenant columns of the table (`tenantry.add_tenant_column`). */
  readonly extraColumns: readonly ColumnSpec[];
  /** Rows counted when the export started (the trailer has the count of rows written). */
  readonly rows: number;
}

/** First line of an export file. */
export interface HeaderRecord {
  readonly type: 'header';
  readonly format: typeof EXPORT_FORMAT;
  readonly formatVersion: number;
  /** Version of the tenantry that wrote the file. */
  readonly tenantry: string;
  readonly createdAt: string;
  readonly source: {
    readonly tenant: string;
    readonly id: number;
    readonly uuid: string;
    readonly isolation: TenantIsolation;
    readonly server: string;
    readonly postgres: string;
  };
  /** Session settings the rows were rendered under (values do not depend on the reader's). */
  readonly settings: Readonly<Record<string, string>>;
  readonly tables: readonly TableSpec[];
}

/** Starts the rows of one table; each following line is `{"row": {...}}` until `table-end`. */
export interface TableStartRecord {
  readonly type: 'table';
  readonly table: string;
}

/** Ends the rows of one table with their count and checksum. */
export interface TableEndRecord {
  readonly type: 'table-end';
  readonly table: string;
  readonly rows: number;
  readonly checksum: string;
}

/** A tenant index (`tenantry.create_tenant_index`): its table and columns. */
export interface IndexRecord {
  readonly type: 'index';
  readonly table: string;
  readonly columns: readonly string[];
}

/** A tenant-specific view, created in the tenant's session on import. */
export interface ViewRecord {
  readonly type: 'view';
  readonly name: string;
  /** The SELECT, as `pg_get_viewdef` renders it with the tenant's search_path. */
  readonly definition: string;
  /** Its reloptions but `security_invoker` (always on), e.g. `check_option=cascaded`. */
  readonly options: readonly string[];
}

/** The tenant's current value of a multi-tenant sequence (`tenantry.next`). */
export interface SequenceRecord {
  readonly type: 'sequence';
  readonly name: string;
  readonly value: string;
}

/** The last value of a serial or identity column's sequence, when the tenant owns it. */
export interface SerialRecord {
  readonly type: 'serial';
  readonly table: string;
  readonly column: string;
  readonly value: string;
}

/** Last line of an export file: what was written, to check the file is whole. */
export interface TrailerRecord {
  readonly type: 'trailer';
  readonly tables: Readonly<Record<string, { readonly rows: number; readonly checksum: string }>>;
  /** Number of object records (index, view, sequence, serial) before the trailer. */
  readonly objects: number;
}

/** An object line of an export file. */
export type ObjectRecord = IndexRecord | ViewRecord | SequenceRecord | SerialRecord;

/** Every record type but rows. */
export type ExportRecord = HeaderRecord | TableStartRecord | TableEndRecord | ObjectRecord | TrailerRecord;

const ROW_PREFIX = '{"row":';

/** The line of one row, given its JSON object text (as PostgreSQL renders it). */
export function rowLine(rowJson: string): string {
  return `${ROW_PREFIX}${rowJson}}`;
}

/** The JSON object text of a row line, or undefined when `line` is not a row line. */
export function rowOfLine(line: string): string | undefined {
  return line.startsWith(ROW_PREFIX) && line.endsWith('}') ? line.slice(ROW_PREFIX.length, -1) : undefined;
}

/** Throws `TENANTRY_ERR_TRANSFER_CORRUPT` with `problem`. */
export function corrupt(problem: string, cause?: unknown): never {
  throw new TenantryError('TRANSFER_CORRUPT', { problem }, cause === undefined ? undefined : { cause });
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;

/** Parses a non-row line, checking the fields its type needs. */
export function parseRecord(line: string, lineNo: number): ExportRecord {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (error) {
    corrupt(`line ${lineNo} is not JSON`, error);
  }
  if (!isObject(value) || typeof value.type !== 'string') corrupt(`line ${lineNo} has no record type`);
  const type = value.type;
  const need = (...fields: string[]) => {
    for (const f of fields) if (value[f] === undefined) corrupt(`line ${lineNo} (${type}) lacks ${f}`);
  };
  switch (value.type) {
    case 'header':
      need('format', 'formatVersion', 'source', 'tables');
      if (value.format !== EXPORT_FORMAT) corrupt(`line ${lineNo} is not a ${EXPORT_FORMAT} header`);
      if (value.formatVersion !== EXPORT_FORMAT_VERSION) {
        throw new TenantryError('TRANSFER_FORMAT', {
          found: String(value.formatVersion),
          supported: EXPORT_FORMAT_VERSION,
        });
      }
      if (!Array.isArray(value.tables)) corrupt('the header lists no tables');
      break;
    case 'table':
      need('table');
      break;
    case 'table-end':
      need('table', 'rows', 'checksum');
      break;
    case 'index':
      need('table', 'columns');
      break;
    case 'view':
      need('name', 'definition', 'options');
      break;
    case 'sequence':
      need('name', 'value');
      break;
    case 'serial':
      need('table', 'column', 'value');
      break;
    case 'trailer':
      need('tables', 'objects');
      break;
    default:
      corrupt(`line ${lineNo} has an unknown record type ${JSON.stringify(value.type)}`);
  }
  return value as unknown as ExportRecord;
}

let version: string | undefined;

/** The version of this tenantry (its package.json), for export headers. */
export function tenantryVersion(): string {
  if (version !== undefined) return version;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'tenantry' && pkg.version) return (version = pkg.version);
    } catch {
      // not here: look one level up
    }
    dir = dirname(dir);
  }
  return (version = 'unknown');
}
