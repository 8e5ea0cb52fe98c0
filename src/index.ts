// The public API of tenantry, listed by name.
export { createTenantry } from './tenantry.js';
export type { OperatorDb, Tenantry, WithTenantOptions } from './tenantry.js';
export type { TenantryConfig, ResolvedConfig } from './config.js';
export { getTenant, tryGetTenant } from './context/index.js';
export type { TenantDb, QueryInput, TenantRoute, PreludeStatement } from './session/index.js';
export type { PoolTarget } from './pool/index.js';
export type {
  Tenant,
  TenantIsolation,
  TenantKind,
  TenantRef,
  TenantState,
  RegisteredTable,
  CatalogCache,
  CatalogRoles,
  CredentialStore,
} from './catalog/index.js';
export type {
  CreateTenantInput,
  OrphanObject,
  RepairAction,
  RepairOptions,
  RepairReport,
  SetTablespaceOptions,
  TenantStore,
} from './tenants/index.js';
export type {
  CreateSequenceOptions,
  GroupInfo,
  GroupRegistry,
  MemberOptions,
  MigrateDefaultResult,
  Segments,
  SequenceInfo,
  SequenceRegistry,
  TableRegistry,
} from './tables/index.js';
export type { Identity } from './isolation/index.js';
export {
  AuthenticatorRegistry,
  DomainStore,
  PrincipalSealer,
  UserStore,
  PRINCIPAL_TYPE,
  hashPassword,
  verifyPassword,
} from './identity/index.js';
export type {
  AddDomainOptions,
  AddedDomain,
  AddUserOptions,
  AuthenticationRequest,
  Authenticator,
  Domain,
  LoginOptions,
  Permission,
  Principal,
  PrincipalInput,
  User,
} from './identity/index.js';
export type { ServerInfo, ServerRegistry } from './servers/index.js';
export { KeyRing, generateMasterKey } from './crypto/index.js';
export { TenantryError, isTenantryError, errorCodes } from './errors.js';
export type { ErrorCode, ErrorDetails } from './errors.js';
export { createLogger } from './logger.js';
export type { Logger } from './logger.js';
export { colocatedPoolMax, startEmbedded } from './embedded/index.js';
export type { EmbeddedOptions, EmbeddedServer } from './embedded/index.js';
export type { CrossTenantOptions, ScanFailure, ScanRow } from './cross-tenant/index.js';
export { Gateway } from './gateway/index.js';
export type { GatewayOptions, GatewayStats, GatewayTenantStats } from './gateway/index.js';
export { buildHttp, startHttp } from './http/index.js';
export type { HttpOptions, HttpServer } from './http/index.js';
export { TenantryDialect, TenantryDriver, tenantryPgPool } from './integrations/index.js';
export type { TenantDbSource, TenantryDialectConfig } from './integrations/index.js';
export { audit, formatReport, hasHighFindings } from './audit/index.js';
export type { AuditReport, Finding, Severity } from './audit/index.js';
export type {
  CacheOptions,
  ClaimedJob,
  DefineOptions,
  EnqueueOptions,
  EventHandler,
  EventLog,
  EventRef,
  EventSubscription,
  IdGenerators,
  IdOptions,
  JobContext,
  JobHandler,
  JobInfo,
  JobQueue,
  JobRef,
  JobSelection,
  JobState,
  JobWorker,
  ListJobsOptions,
  StopOptions,
  SubscribeOptions,
  TenantCache,
  TenantEvent,
  WorkerOptions,
  WorkerStats,
} from './runtime/index.js';
export { FleetMigrations, ProgressView, loadMigrationDir, splitSections } from './fleet/index.js';
export { TenantMoves } from './fleet/move/index.js';
export type {
  MoveOptions,
  MoveProgress,
  MoveReport,
  MoveRow,
  MoveTarget,
  Placement,
} from './fleet/move/index.js';
export type {
  AppliedMigration,
  FleetTenant,
  LoadedMigration,
  MigrateOptions,
  Migration,
  MigrationDb,
  MigrationProgress,
  MigrationReport,
  MigrationScope,
  MigrationStatus,
  MigrationStep,
  PlannedTarget,
  TargetFailure,
  TemplateRow,
} from './fleet/index.js';
export {
  EXPORT_FORMAT_VERSION,
  copyTenantRows,
  exportTenant,
  importTenant,
  readTransferTables,
  tenantChecksums,
  withPlacementClient,
} from './fleet/transfer/index.js';
export type {
  CopyOptions,
  ExportOptions,
  ExportSummary,
  ImportOptions,
  ImportSummary,
  PlacementDb,
  TableChecksum,
  TenantPlacement,
  TransferProgress,
  TransferTable,
} from './fleet/transfer/index.js';
export { normalizeSql, refusedStatement } from './session/index.js';
