import { z } from 'zod';
import { TenantryError } from './errors.js';
import type { Logger } from './logger.js';

const postgresUrl = z.string().regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL');

const poolSchema = z.strictObject({
  /**
   * Connections this process may open to each server for tenant work. Default: the server's
   * max_connections minus superuser_reserved_connections minus `reserve`.
   */
  budget: z.int().min(1).max(100_000).optional(),
  /** Connections left free when the budget is derived from max_connections. */
  reserve: z.int().min(0).default(15),
  /** Connections one tenant may hold at once (default: a quarter of the budget). */
  perTenantMax: z.int().min(1).optional(),
  /**
   * Connections the application role's pool of one database may hold: the pool every shared and
   * schema tenant's statements through the library, the HTTP API and cross-tenant scans share
   * (like PgBouncer's default_pool_size). More statements at once wait their turn. Default: no cap
   * of its own (the budget); `tenantry serve` on its embedded PostgreSQL uses 4 per CPU of the
   * machine (`colocatedPoolMax()`).
   */
  sharedPoolMax: z.int().min(1).optional(),
  /** Live pools kept at most (LRU beyond it). */
  maxPools: z.int().min(1).default(1000),
  /** Idle connections are closed after this many ms. */
  idleTimeoutMs: z.int().min(10).default(30_000),
  /** How long a checkout may wait for a connection before TENANTRY_ERR_POOL_TIMEOUT. */
  checkoutTimeoutMs: z.int().min(1).default(10_000),
  /**
   * How long opening one backend connection may take (a server that accepts TCP but never
   * answers) before TENANTRY_ERR_DATABASE_UNREACHABLE. Default: the checkout timeout.
   */
  connectTimeoutMs: z.int().min(1).optional(),
  /**
   * Client-side limit of one statement on a pooled connection, for a server that stops answering
   * (the connection is then discarded). 0, the default: none — use statement_timeout for slow
   * queries; this is for dead network paths. On the operator's connection it bounds catalog
   * reads; long operator work (a catalog upgrade, cloning, dropping or moving a tenant's storage,
   * deleting a dropped tenant's rows, CREATE DATABASE) is exempt.
   */
  queryTimeoutMs: z.int().min(0).default(0),
  /** A backend is recycled after serving this many distinct tenant schemas. */
  maxSchemasPerConnection: z.int().min(1).default(100),
  /** A backend is recycled after this many checkouts (0: never). */
  maxUsesPerConnection: z.int().min(0).default(0),
});

const configSchema = z.strictObject({
  /** The operator's connection: may create roles and schemas (a superuser, typically). */
  databaseUrl: postgresUrl,
  /** Install or upgrade the catalog on start (default true). */
  install: z.boolean().default(true),
  pool: poolSchema.prefault({}),
  /**
   * Interval of the catalog cache's full re-read, in ms (at most a day: removed tenants' tombstones
   * are kept 7 days). Notifications trigger re-reads of what changed in between.
   */
  catalogPollMs: z.int().min(100).max(86_400_000).default(30_000),
  /**
   * Master key(s) sealing tenant credentials: base64 of 32 bytes, or `NEW,OLD` while rotating.
   * Needed for per-tenant login roles and schema tenants.
   */
  masterKey: z.string().min(1).optional(),
  /** A pino logger; tenantry is silent without one. */
  logger: z
    .custom<Logger>((value) => typeof value === 'object' && value !== null && 'info' in value)
    .optional(),
});

/** Configuration accepted by `createTenantry()`. Unknown keys are rejected by name. */
export type TenantryConfig = z.input<typeof configSchema>;

/** The validated, frozen configuration an instance runs with. */
export type ResolvedConfig = Readonly<z.output<typeof configSchema>>;

/** Turns a zod failure into one readable line naming each offending key. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => {
      const path = issue.path.join('.') || '(root)';
      if (issue.code === 'unrecognized_keys') return `unknown key(s) ${issue.keys.join(', ')} at ${path}`;
      return `${path}: ${issue.message}`;
    })
    .join('; ');
}

/**
 * Validates a configuration once and freezes it. Throws `TENANTRY_ERR_CONFIG` naming every
 * bad or unknown key.
 */
export function resolveConfig(input: TenantryConfig): ResolvedConfig {
  const parsed = configSchema.safeParse(input);
  if (!parsed.success) throw new TenantryError('CONFIG', { problem: describeIssues(parsed.error) });
  return Object.freeze({ ...parsed.data, pool: Object.freeze({ ...parsed.data.pool }) });
}

/**
 * Settings the CLI takes from flags and the environment. This is the only place that reads
 * `process.env`; flags win over environment variables.
 */
export interface CliSettings {
  readonly dataDir: string;
  readonly databaseUrl: string | undefined;
  /** `TENANTRY_MASTER_KEY`, when set. */
  readonly masterKey: string | undefined;
  /** `TENANTRY_LOG_LEVEL`, when set (pino levels: fatal, error, warn, info, debug, trace, silent). */
  readonly logLevel: string | undefined;
  /** `TENANTRY_ADMIN_TOKEN`, when set: the HTTP admin API's token. */
  readonly adminToken: string | undefined;
}

const cliSchema = z.strictObject({
  dataDir: z.string().min(1),
  databaseUrl: postgresUrl.optional(),
  masterKey: z.string().min(1).optional(),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).optional(),
  adminToken: z.string().min(16, 'TENANTRY_ADMIN_TOKEN must be at least 16 characters').optional(),
});

/**
 * Resolves CLI settings from flags and `env` (`TENANTRY_DATABASE_URL`, `TENANTRY_DATA_DIR`,
 * `TENANTRY_MASTER_KEY`, `TENANTRY_LOG_LEVEL`, `TENANTRY_ADMIN_TOKEN`).
 */
export function resolveCliSettings(
  flags: { dataDir?: string | undefined; databaseUrl?: string | undefined },
  env: NodeJS.ProcessEnv = process.env,
): CliSettings {
  const candidate = {
    dataDir: flags.dataDir ?? env.TENANTRY_DATA_DIR ?? './.tenantry',
    databaseUrl: flags.databaseUrl ?? (env.TENANTRY_DATABASE_URL || undefined),
    masterKey: env.TENANTRY_MASTER_KEY || undefined,
    logLevel: env.TENANTRY_LOG_LEVEL || undefined,
    adminToken: env.TENANTRY_ADMIN_TOKEN || undefined,
  };
  const parsed = cliSchema.safeParse(candidate);
  if (!parsed.success) throw new TenantryError('CONFIG', { problem: describeIssues(parsed.error) });
  return Object.freeze({
    dataDir: parsed.data.dataDir,
    databaseUrl: parsed.data.databaseUrl,
    masterKey: parsed.data.masterKey,
    logLevel: parsed.data.logLevel,
    adminToken: parsed.data.adminToken,
  });
}
