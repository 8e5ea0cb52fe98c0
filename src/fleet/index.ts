export { FleetMigrations } from './fleet-migrations.js';
export type { MigrationStatus } from './fleet-migrations.js';
export { DatabaseTemplates } from './database-template.js';
export type { DatabaseNames, DatabaseTemplatesOptions } from './database-template.js';
export type { AppliedMigration, FleetTenant, TemplateRow } from './fleet-store.js';
export { checkMigrations, loadMigrationDir, splitSections } from './migration-source.js';
export type {
  LoadedMigration,
  Migration,
  MigrationDb,
  MigrationScope,
  MigrationStep,
} from './migration-source.js';
export type { PlannedTarget } from './plan.js';
export { ProgressView } from './progress.js';
export type { FleetContext, MigrationProgress, TargetFailure } from './run-context.js';
export type { MigrateOptions, MigrationReport } from './runner.js';
