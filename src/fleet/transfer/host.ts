import type { Tenantry } from '../../tenantry.js';

/**
 * What export and import use of a tenantry instance: tenant lifecycle, the servers' operator
 * URLs, tenant sessions (own objects are created the way the tenant itself would), the catalog
 * cache and whether a master key is configured. A {@link Tenantry} is one.
 */
export type TransferHost = Pick<Tenantry, 'tenants' | 'servers' | 'withTenant' | 'catalog' | 'config'>;

/** Progress of an export or import, reported after each batch of rows and each phase. */
export interface TransferProgress {
  /** `rows`: copying rows; `objects`: indexes, views, sequences; `verify`: checksums; `done`. */
  readonly phase: 'rows' | 'objects' | 'verify' | 'done';
  /** The table being copied (`schema.table`), in the `rows` phase. */
  readonly table?: string;
  /** Rows done so far, over all tables. */
  readonly rows: number;
  /** Rows expected over all tables (counted when the export started). */
  readonly totalRows: number;
}

/** Name prefix of a tenant an import is filling (renamed to its real name at the very end). */
export const STAGING_PREFIX = 'tenantry-import-';

/** First key of the advisory lock a running import holds on its staging tenant's name. */
export const IMPORT_LOCK = 730_344_024;
