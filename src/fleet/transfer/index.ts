// Tenant export and restore (docs/fleet.md, "Export and restore"), and the pieces other fleet
// operations reuse: placement-independent checksums and batched row copies between placements.
export { exportTenant } from './export.js';
export type { ExportOptions, ExportSummary } from './export.js';
export { importTenant } from './import.js';
export type { ImportOptions, ImportSummary } from './import.js';
export { RowDigest, tenantChecksums } from './checksum.js';
export type { TableChecksum } from './checksum.js';
export {
  DEFAULT_BATCH_SIZE,
  advanceSerials,
  copyTenantRows,
  insertRows,
  readTenantRows,
} from './copy-rows.js';
export type { BatchOptions, CopyOptions } from './copy-rows.js';
export {
  PORTABLE_SETTINGS,
  checkSameShape,
  dataRelation,
  readShape,
  tableKey,
  withPlacementClient,
  withPortableSettings,
} from './placement.js';
export type {
  PlacementDb,
  PlacementHost,
  Queryable,
  TableShape,
  TenantPlacement,
  TransferTable,
} from './placement.js';
export { readTransferTables, soleGroupSegments } from './tables.js';
export { EXPORT_FORMAT, EXPORT_FORMAT_VERSION } from './format.js';
export type {
  ColumnSpec,
  ExportRecord,
  HeaderRecord,
  IndexRecord,
  ObjectRecord,
  SequenceRecord,
  SerialRecord,
  TableEndRecord,
  TableSpec,
  TableStartRecord,
  TrailerRecord,
  ViewRecord,
} from './format.js';
export { STAGING_PREFIX } from './host.js';
export type { TransferHost, TransferProgress } from './host.js';
