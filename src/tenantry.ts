import pg from 'pg';
import {
  CatalogCache,
  CredentialStore,
  installCatalog,
  readInstalledCatalog,
  type CatalogRoles,
  type Tenant,
  type TenantRef,
} from './catalog/index.js';
import { resolveConfig, type ResolvedConfig, type TenantryConfig } from './config.js';
import { describeUrl } from './connection-url.js';
import { getTenant, runInTenantContext, tryGetTenantContext } from './context/index.js';
import { isTenantryError, TenantryError } from './errors.js';
import { createLogger, type Logger } from './logger.js';
import { Gateway, createGatewayHost, type GatewayOptions } from './gateway/index.js';
import { TenantMetrics } from './metrics/index.js';
import { KeyRing } from './crypto/index.js';
import {
  createScanHost,
  crossTenantScan,
  type CrossTenantOptions,
  type ScanFailure,
  type ScanHost,
  type ScanRow,
} from './cross-tenant/index.js';
import {
  DatabaseProvisioner,
  PermissionRoles,
  Router,
  tenantPoolIdentity,
  type Identity,
} from './isolation/index.js';
import { ServerRegistry, deriveBudget } from './servers/index.js';
import { PoolManager, type PoolStats } from './pool/index.js';
import {
  PooledTenantDb,
  type PreludeStatement,
  type QueryInput,
  type TenantDb,
  type TenantRoute,
} from './session/index.js';
import { GroupRegistry, Segments, SequenceRegistry, TableRegistry } from './tables/index.js';
import { FleetMigrations } from './fleet/index.js';
import { TenantMoves } from './fleet/move/index.js';
import { LoginReadiness, TenantStore } from './tenants/index.js';
import {
  AuthenticatorRegistry,
  CachedUserStore,
  DelegationTokens,
  DomainStore,
  PrincipalSealer,
  SignOn,
  RevocationCache,
  UserCache,
  UserStore,
  type LoginOptions,
  type Principal,
} from './identity/index.js';
import { PERMISSIONS, checkPermission, type Permission } from './identity/names.js';
import {
  Runtime,
  type CacheOptions,
  type EventLog,
  type IdGenerators,
  type JobQueue,
  type TenantCache,
} from './runtime/index.js';

/** Prelude that makes a transaction read-only (users with the `read` permission). */
const READ_ONLY: PreludeStatement = { text: "SELECT set_config('transaction_read_only', 'on', true)" };

/** The operator's connection: plain node-postgres queries, outside any tenant. */
export interface OperatorDb {
  /** Runs SQL as the operator (the user of `databaseUrl`). */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    text: string,
    values?: readonly unknown[],
  ): Promise<pg.QueryResult<R>>;
}

/** Options of {@link Tenantry.withTenant}. */
export interface WithTenantOptions {
  /** Let the operator reach a locked tenant (default false). */
  readonly allowLocked?: boolean;
  /**
   * `app` (default): the shared application role with a transaction-local tenant setting, for
   * your own trusted code. `tenant`: the tenant's own login role, for SQL the tenant wrote —
   * nothing that SQL does can change its tenant. Throws `TENANTRY_ERR_TENANT_NO_ROLE` when the
   * tenant has no role.
   */
  readonly identity?: Identity;
  /**
   * Make every transaction read-only (PostgreSQL refuses writes with SQLSTATE 25006); used for
   * principals of users with the `read` permission.
   */
  readonly readOnly?: boolean;
  /**
   * What the statements may do inside the tenant: `admin` (default), `write` (DML, no DDL) or
   * `read` (SELECT only). With the `tenant` identity they run under the tenant's login role for
   * that permission (created on first use) and PostgreSQL refuses what it does not allow with
   * SQLSTATE 42501 (docs/rights.md); with the `app` identity, `read` makes every transaction
   * read-only.
   */
  readonly permission?: Permission;
}

/** A running tenantry instance: catalog, tenant lifecycle and tenant-scoped queries. */
export interface Tenantry extends AsyncDisposable {
  /** Tenant lifecycle: create, list, show, disable, enable, lock, unlock, drop. */
  readonly tenants: TenantStore;
  /** Credentials sealed with the master key (rotation: `credentials.rotate()`). */
  readonly credentials: CredentialStore;
  /** The servers tenants can be placed on (the shard map). */
  readonly servers: ServerRegistry;
  /** Multi-tenant and shared sequences (`tenantry.next('name')` in SQL). */
  readonly sequences: SequenceRegistry;
  /** Tenant groups sharing one segment of a table (seed 004's LowesItm). */
  readonly groups: GroupRegistry;
  /** Segment allocation and moving rows out of the default tenant's segment. */
  readonly segments: Segments;
  /**
   * The application's own migrations across the fleet — the shared tables once, then every
   * schema and database tenant, resumable per tenant — and their status (docs/fleet.md).
   */
  readonly migrations: FleetMigrations;
  /**
   * Online tenant moves between shared tables and own databases, and between servers, while the
   * tenant keeps writing; resumable after a crash, `abort()` rolls back (docs/fleet.md).
   */
  readonly moves: TenantMoves;
  /** Declares multi-tenant and shared tables. */
  readonly tables: TableRegistry;
  /** The catalog cache (NOTIFY-invalidated). */
  readonly catalog: CatalogCache;
  /** Sign-on domains: each maps its users (`user@domain`) to one tenant. */
  readonly domains: DomainStore;
  /** Tenantry's own users with scrypt-hashed passwords and a permission. */
  readonly users: UserStore;
  /** Authentication systems besides `builtin`, registered in this process. */
  readonly authenticators: AuthenticatorRegistry;
  /** Seals and opens principals (HS256 JWS under a key sealed in the catalog). */
  readonly principals: PrincipalSealer;
  /** Delegation tokens (seed 000): issue for a user on behalf of a service, verify, revoke. */
  readonly tokens: DelegationTokens;
  /**
   * Logs user `ref` (`alice@HomeDepot`) in and answers a sealed principal (default lifetime 1 h).
   * Needs a master key. Throws `TENANTRY_ERR_AUTH` (unknown user or wrong password alike),
   * `TENANTRY_ERR_TENANT_DISABLED`, `TENANTRY_ERR_TENANT_LOCKED`, `TENANTRY_ERR_MASTER_KEY_INVALID`.
   */
  login(ref: string, password: string, options?: LoginOptions): Promise<string>;
  /**
   * Verifies `principal`, checks its user still exists, then runs `fn` as its tenant like
   * {@link Tenantry.withTenant}; nothing carries over between calls. Throws
   * `TENANTRY_ERR_TOKEN_INVALID`, `TENANTRY_ERR_TOKEN_EXPIRED`, `TENANTRY_ERR_AUTH` and the
   * tenant-state errors of withTenant.
   */
  withPrincipal<T>(principal: string, fn: (db: TenantDb, principal: Principal) => Promise<T>): Promise<T>;
  /**
   * Verifies a sealed principal or a delegation token (signature, expiry, revocation, the user
   * still in the same tenant) and answers the principal, with the user's current permission.
   */
  authorize(token: string): Promise<Principal>;
  /**
   * Makes `tenant` ready for SQL under its own login role (gateway, HTTP SQL, `withTenant(…,
   * { identity: 'tenant' })`): creates the role when it has none and grants its own schema, once
   * per tenant and process. Answers the tenant with its role. Needs a master key.
   */
  prepareLoginRole(tenant: TenantRef | Tenant): Promise<Tenant>;
  /** Role names of this installation. */
  readonly roles: CatalogRoles;
  /**
   * The operator's own connection (DDL, maintenance). It is not tenant-scoped and bypasses
   * nothing by itself: whatever the configured database user may do. Never hand it to tenant code.
   */
  readonly operator: OperatorDb;
  /** The validated configuration. */
  readonly config: ResolvedConfig;
  /**
   * Runs `fn` as `tenant` (id, uuid, name or a Tenant): `getTenant()` answers it inside, and
   * `db` runs every statement under row-level security for that tenant. Throws
   * `TENANTRY_ERR_TENANT_NOT_FOUND`, `TENANTRY_ERR_TENANT_DISABLED`, `TENANTRY_ERR_TENANT_LOCKED`.
   */
  withTenant<T>(
    tenant: TenantRef | Tenant,
    fn: (db: TenantDb) => Promise<T>,
    options?: WithTenantOptions,
  ): Promise<T>;
  /** The tenant-scoped handle of the current context; throws `TENANTRY_ERR_NO_TENANT` outside one. */
  db(): TenantDb;
  /** Runs a statement as the current context's tenant (see {@link TenantDb.query}). */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    input: QueryInput,
    values?: readonly unknown[],
  ): Promise<pg.QueryResult<R>>;
  /** Runs `fn` in a transaction as the current context's tenant. */
  transaction<T>(fn: (tx: TenantDb) => Promise<T>): Promise<T>;
  /** Resolves a tenant reference against the catalog; throws `TENANTRY_ERR_TENANT_NOT_FOUND`. */
  resolveTenant(tenant: TenantRef | Tenant): Promise<Tenant>;
  /**
   * SET-EFFECTIVE-TENANT of seed 004: from a super tenant's context, runs `fn` as `tenant`.
   * Throws `TENANTRY_ERR_FORBIDDEN` for anyone but a super tenant.
   */
  effective<T>(tenant: TenantRef, fn: (db: TenantDb) => Promise<T>): Promise<T>;
  /**
   * TENANT-WHERE of seed 004: runs `options.sql` (read-only) in every tenant selected by
   * `options.where` and streams the rows tagged `_tenant_id` / `_tenant_name`, by tenant or
   * merged by `options.orderBy`; shared and schema tenants are read in batches, one statement
   * each. Only from a super tenant's context, or with `asOperator` for the operator's own tools
   * (`TENANTRY_ERR_FORBIDDEN`). Tenants skipped under `onError: 'partial'` are pushed onto
   * `failures`.
   */
  crossTenant(
    options: CrossTenantOptions & { readonly asOperator?: boolean },
    failures?: ScanFailure[],
  ): AsyncGenerator<ScanRow>;
  /**
   * How SQL `tenant` wrote reaches PostgreSQL under `permission` (default `admin`): a pool
   * target (identity `tenant:<id>` or `tenant:<id>:<permission>`) that connects as the tenant's
   * login role for that permission, creating a `write` or `read` role on first connection. For
   * faces that run tenants' SQL (the gateway). Throws `TENANTRY_ERR_TENANT_NO_ROLE`.
   */
  tenantRoute(tenant: Tenant, permission?: Permission): TenantRoute;
  /** Pools, connections, waiters and per-tenant checkout figures. */
  poolStats(): PoolStats;
  /** Per-tenant queries, errors and latencies of the HTTP API and the gateway (for /metrics). */
  readonly metrics: TenantMetrics;
  /**
   * Starts the PostgreSQL wire-protocol gateway (default 127.0.0.1:6432, database `tenantry`):
   * clients log in as `user@domain` and see only their tenant. Close it before the instance.
   */
  startGateway(options?: GatewayOptions): Promise<Gateway>;
  /**
   * The tenant-scoped cache `name` (lru-cache; created on first call, later calls pass the same
   * options): used inside a tenant context, the same key in two tenants never collides, and a
   * tenant's entries vanish when it is disabled or dropped. See docs/runtime.md.
   */
  cache<V extends NonNullable<unknown>>(name: string, options: CacheOptions): TenantCache<V>;
  /** Jobs and timers per tenant: define, enqueue, run workers, list/retry/cancel (docs/runtime.md). */
  readonly jobs: JobQueue;
  /** The per-tenant event outbox: publish in a transaction, subscribe in commit order per tenant. */
  readonly events: EventLog;
  /** Per-tenant, per-entity hi/lo id generators (`tenantry.next_id('entity')` in SQL). */
  readonly ids: IdGenerators;
  /** Stops job workers and event subscriptions (running jobs get 10 s), then closes pools and listeners. */
  close(): Promise<void>;
}

async function connectAdmin(url: string, logger: Logger, config: ResolvedConfig): Promise<pg.Pool> {
  const { connectTimeoutMs, checkoutTimeoutMs, queryTimeoutMs } = config.pool;
  const pool = new pg.Pool({
    connectionString: url,
    max: 4,
    application_name: 'tenantry-operator',
    // A dead path to PostgreSQL must not hold catalog reads (logins, revalidation) forever.
    connectionTimeoutMillis: connectTimeoutMs ?? checkoutTimeoutMs,
    ...(queryTimeoutMs > 0 ? { query_timeout: queryTimeoutMs } : {}),
  });
  pool.on('error', (error) => logger.warn({ err: error }, 'idle operator connection failed'));
  try {
    const client = await pool.connect();
    client.release();
  } catch (error) {
    await pool.end().catch(() => undefined);
    throw new TenantryError(
      'DATABASE_UNREACHABLE',
      { where: describeUrl(url), problem: error instanceof Error ? error.message : String(error) },
      { cause: error },
    );
  }
  return pool;
}

/**
 * Connects to PostgreSQL, installs or upgrades the catalog (unless `install: false`), loads
 * the catalog cache and returns a {@link Tenantry}. Throws `TENANTRY_ERR_CONFIG` for bad
 * configuration and `TENANTRY_ERR_DATABASE_UNREACHABLE` when PostgreSQL cannot be reached.
 */
export async function createTenantry(input: TenantryConfig): Promise<Tenantry> {
  const config = resolveConfig(input);
  const logger = config.logger ?? createLogger();
  const admin = await connectAdmin(config.databaseUrl, logger, config);
  try {
    const client = await admin.connect();
    let installed;
    try {
      installed = config.install ? await installCatalog(client, logger) : await readInstalledCatalog(client);
    } finally {
      client.release();
    }
    const pools = new PoolManager(
      {
        ...(config.pool.perTenantMax === undefined ? {} : { perTenantMax: config.pool.perTenantMax }),
        maxPools: config.pool.maxPools,
        idleTimeoutMs: config.pool.idleTimeoutMs,
        checkoutTimeoutMs: config.pool.checkoutTimeoutMs,
        ...(config.pool.connectTimeoutMs === undefined
          ? {}
          : { connectTimeoutMs: config.pool.connectTimeoutMs }),
        queryTimeoutMs: config.pool.queryTimeoutMs,
        maxSchemasPerConnection: config.pool.maxSchemasPerConnection,
        maxUsesPerConnection: config.pool.maxUsesPerConnection,
      },
      logger,
    );
    pools.setServer('main', config.pool.budget ?? (await deriveBudget(admin, config.pool.reserve)));

    const ring = config.masterKey === undefined ? undefined : KeyRing.fromEnv(config.masterKey, 'masterKey');
    const credentials = new CredentialStore(admin, ring);
    await credentials.checkKey();
    const servers = new ServerRegistry({
      admin,
      mainUrl: config.databaseUrl,
      credentials,
      pools,
      roles: installed.roles,
      reserve: config.pool.reserve,
      mainAppPassword: installed.appPassword,
    });
    await servers.load(config.pool.budget);
    const permissionRoles = new PermissionRoles({
      pool: admin,
      roles: installed.roles,
      credentials,
      servers,
    });
    const router = new Router({
      permissionRoles,
      appUser: installed.roles.app,
      appPassword: installed.appPassword,
      credentials,
      servers,
      sharedPoolMax: config.pool.sharedPoolMax,
    });
    const databases = new DatabaseProvisioner(admin, servers, installed.roles, {
      url: config.databaseUrl,
      password: installed.fdwPassword,
    });
    const catalog = new CatalogCache({
      connection: { connectionString: config.databaseUrl, application_name: 'tenantry-listener' },
      pool: admin,
      logger,
      pollMs: config.catalogPollMs,
    });
    await catalog.start();
    return new TenantryInstance(config, installed.roles, admin, pools, router, catalog, credentials, {
      servers,
      databases,
      permissionRoles,
      logger,
      fdwPassword: installed.fdwPassword,
    });
  } catch (error) {
    await admin.end().catch(() => undefined);
    throw error;
  }
}

class TenantryInstance implements Tenantry {
  readonly tenants: TenantStore;
  readonly tables: TableRegistry;
  readonly catalog: CatalogCache;
  readonly roles: CatalogRoles;
  readonly config: ResolvedConfig;
  readonly operator: OperatorDb;
  readonly #admin: pg.Pool;
  readonly #pools: PoolManager;
  readonly #router: Router;
  readonly credentials: CredentialStore;
  readonly servers: ServerRegistry;
  readonly sequences: SequenceRegistry;
  readonly groups: GroupRegistry;
  readonly segments: Segments;
  readonly migrations: FleetMigrations;
  readonly moves: TenantMoves;
  readonly domains: DomainStore;
  readonly users: UserStore;
  readonly authenticators = new AuthenticatorRegistry();
  readonly metrics = new TenantMetrics();
  readonly principals: PrincipalSealer;
  readonly tokens: DelegationTokens;
  readonly #signOn: SignOn;
  readonly #logger: Logger;
  readonly #loginReady: LoginReadiness;
  readonly #runtime: Runtime;
  #closed = false;

  constructor(
    config: ResolvedConfig,
    roles: CatalogRoles,
    admin: pg.Pool,
    pools: PoolManager,
    router: Router,
    catalog: CatalogCache,
    credentials: CredentialStore,
    parts: {
      servers: ServerRegistry;
      databases: DatabaseProvisioner;
      permissionRoles: PermissionRoles;
      fdwPassword: string;
      logger: Logger;
    },
  ) {
    this.#logger = parts.logger;
    this.config = config;
    this.roles = roles;
    this.#admin = admin;
    this.#pools = pools;
    this.#router = router;
    this.catalog = catalog;
    this.credentials = credentials;
    this.servers = parts.servers;
    this.sequences = new SequenceRegistry(admin, parts.databases, roles.owner);
    this.groups = new GroupRegistry(admin, catalog, roles);
    this.segments = new Segments(admin, roles);
    this.migrations = new FleetMigrations({
      admin,
      url: config.databaseUrl,
      roles,
      serverUrl: (server) => parts.servers.url(server),
      templates: parts.databases.templates,
      fdw: { url: config.databaseUrl, user: roles.fdw, password: parts.fdwPassword },
      resolveTenant: (ref) => this.resolveTenant(ref),
      reload: () => catalog.reload(),
    });
    // a tenant's pools in this process (its login roles' and its database's), on its placement
    const closePools = (tenant: Tenant): void => {
      for (const permission of PERMISSIONS) {
        pools.closeIdentity(tenant.server, tenantPoolIdentity(tenant.id, permission, tenant.placementEpoch));
      }
      parts.permissionRoles.forget(tenant.id);
      if (tenant.databaseName) pools.closeIdentity(tenant.server, `app:${tenant.databaseName}`);
    };
    this.tenants = new TenantStore({
      pool: admin,
      cache: catalog,
      roles,
      credentials,
      databases: parts.databases,
      permissionRoles: parts.permissionRoles,
      onDropped: (tenant) => {
        closePools(tenant);
        this.#runtime.forget(tenant);
        this.metrics.forget(tenant.name);
      },
      serverUrl: (server) => parts.servers.url(server),
      closePools,
    });
    this.moves = new TenantMoves({
      admin,
      roles,
      credentials,
      mainUrl: config.databaseUrl,
      serverUrl: (server) => parts.servers.url(server),
      createDatabase: (tenant, server, names) => parts.databases.create(tenant, server, names),
      showTenant: (ref) => this.tenants.show(ref),
      reload: () => catalog.reload(),
      closePools,
    });
    this.#loginReady = new LoginReadiness(this.tenants, (sql, values) => admin.query(sql, values));
    this.tables = new TableRegistry(admin, catalog, parts.databases);
    this.domains = new DomainStore({
      pool: admin,
      credentials,
      resolveTenant: (ref) => this.resolveTenant(ref),
      onChange: () => catalog.reload().catch(() => undefined),
    });
    // The user → tenant mapping, cleared whenever the catalog may have changed (NOTIFY).
    const userCache = new UserCache({ enabled: () => catalog.listening });
    catalog.onChange(() => userCache.clear());
    this.users = new CachedUserStore(admin, userCache);
    this.principals = new PrincipalSealer({
      pool: admin,
      credentials,
      hasMasterKey: config.masterKey !== undefined,
    });
    const revocations = new RevocationCache(admin, () => catalog.listening);
    catalog.onChange(() => revocations.invalidate());
    this.tokens = new DelegationTokens({ pool: admin, credentials, users: this.users, revocations });
    catalog.onChange(() => {
      this.tokens.clearVerified();
      this.principals.clearVerified();
    });
    this.#signOn = new SignOn({
      users: this.users,
      principals: this.principals,
      authenticators: this.authenticators,
      findTenant: (id) => catalog.find(id),
      logger: parts.logger,
    });
    this.operator = {
      query: <R extends pg.QueryResultRow>(text: string, values?: readonly unknown[]) =>
        admin.query<R>(text, values === undefined ? undefined : [...values]),
    };
    this.#runtime = new Runtime({
      databaseUrl: config.databaseUrl,
      roles,
      catalog,
      logger: parts.logger,
      admin,
      serverUrl: (server) => parts.servers.url(server),
      resolveTenant: (ref) => this.resolveTenant(ref),
      withTenant: (tenant, fn) => this.withTenant(tenant, fn),
      bookkeeping: (tenant) => this.#dbFor(tenant, () => undefined, 'app'),
      currentDb: () => this.db(),
    });
  }

  cache<V extends NonNullable<unknown>>(name: string, options: CacheOptions): TenantCache<V> {
    return this.#runtime.cache<V>(name, options);
  }

  get jobs(): JobQueue {
    return this.#runtime.jobs;
  }

  get events(): EventLog {
    return this.#runtime.events;
  }

  get ids(): IdGenerators {
    return this.#runtime.ids;
  }

  async resolveTenant(ref: TenantRef | Tenant): Promise<Tenant> {
    this.#checkOpen();
    const key = typeof ref === 'object' ? ref.id : ref;
    if (typeof key !== 'number' && typeof key !== 'string') {
      throw new TenantryError('INVALID_ARGUMENT', {
        what: 'tenant',
        problem: 'expected an id, uuid or name',
      });
    }
    const tenant = await this.catalog.find(key);
    if (!tenant) throw new TenantryError('TENANT_NOT_FOUND', { tenant: String(key) });
    return tenant;
  }

  #gate(allowLocked: boolean): (tenant: Tenant) => void {
    return (tenant) => {
      this.#checkOpen();
      const current = this.catalog.get(tenant.id);
      if (!current) throw new TenantryError('TENANT_NOT_FOUND', { tenant: tenant.name });
      if (current.kind === 'group') {
        throw new TenantryError('TENANT_KIND', {
          tenant: current.name,
          kind: 'group',
          problem: 'a group is a data segment, not a tenant to act as',
        });
      }
      switch (current.state) {
        case 'active':
          return;
        case 'disabled':
          throw new TenantryError('TENANT_DISABLED', { tenant: current.name });
        case 'locked':
          if (allowLocked) return;
          throw new TenantryError('TENANT_LOCKED', { tenant: current.name });
      }
    };
  }

  async withTenant<T>(
    ref: TenantRef | Tenant,
    fn: (db: TenantDb) => Promise<T>,
    options: WithTenantOptions = {},
  ): Promise<T> {
    const tenant = await this.resolveTenant(ref);
    const gate = this.#gate(options.allowLocked === true);
    gate(tenant);
    const extra = options.readOnly === true ? [READ_ONLY] : [];
    const db = this.#dbFor(tenant, gate, options.identity ?? 'app', extra, options.permission);
    // Awaited inside the context: a lazy thenable returned by fn (a query builder) runs as this tenant.
    try {
      return await runInTenantContext({ tenant, db }, async () => await fn(db));
    } catch (error) {
      throw await this.#movedError(tenant, error);
    }
  }

  /**
   * Routed by a placement the tenant has left (a move): the catalog is reloaded so the caller's
   * retry goes to the new one. A database tenant's old database or login role may be gone already
   * (SQLSTATE 3D000, 28000, 28P01): that, too, is `TENANTRY_ERR_TENANT_MOVED` once the reloaded
   * catalog shows a newer placement.
   */
  async #movedError(tenant: Tenant, error: unknown): Promise<unknown> {
    if (isTenantryError(error, 'TENANT_MOVED')) {
      await this.catalog.reload().catch(() => undefined);
      return error;
    }
    if (tenant.isolation !== 'database') return error;
    let cause: unknown = error;
    for (let depth = 0; cause instanceof Error && depth < 4; depth++) {
      const code = (cause as { code?: unknown }).code;
      if (code === '3D000' || code === '28000' || code === '28P01') {
        await this.catalog.reload().catch(() => undefined);
        const now = this.catalog.get(tenant.id);
        if (now && now.placementEpoch !== tenant.placementEpoch) {
          return new TenantryError('TENANT_MOVED', { tenant: tenant.name }, { cause: error });
        }
        return error;
      }
      cause = cause.cause;
    }
    return error;
  }

  login(ref: string, password: string, options?: LoginOptions): Promise<string> {
    this.#checkOpen();
    return this.#signOn.login(ref, password, options);
  }

  async prepareLoginRole(ref: TenantRef | Tenant): Promise<Tenant> {
    return this.#loginReady.ready(await this.resolveTenant(ref));
  }

  authorize(token: string): Promise<Principal> {
    this.#checkOpen();
    return DelegationTokens.looksLike(token) ? this.#fromDelegation(token) : this.#signOn.authorize(token);
  }

  async withPrincipal<T>(token: string, fn: (db: TenantDb, principal: Principal) => Promise<T>): Promise<T> {
    const principal = await this.authorize(token);
    return this.withTenant(principal.tenant.id, (db) => fn(db, principal), {
      readOnly: principal.permission === 'read',
    });
  }

  /** A delegation token's user, as a principal (seed 000: the backend acts as the user). */
  async #fromDelegation(token: string): Promise<Principal> {
    const d = await this.tokens.verify(token);
    return {
      user: d.user,
      domain: d.domain,
      tenant: d.tenant,
      permission: d.permission,
      issuedAt: new Date(),
      expiresAt: d.expiresAt,
      id: d.id,
    };
  }

  /** Routes per tenant version (catalog reloads replace Tenant objects, so entries age out). */
  readonly #routes = new WeakMap<Tenant, Map<string, TenantRoute>>();

  tenantRoute(tenant: Tenant, permission: Permission = 'admin'): TenantRoute {
    this.#checkOpen();
    return this.#route(tenant, 'tenant', checkPermission(permission));
  }

  /** The memoised route of `tenant` under `identity` and `permission`. */
  #route(tenant: Tenant, identity: Identity, permission: Permission): TenantRoute {
    let routes = this.#routes.get(tenant);
    if (!routes) this.#routes.set(tenant, (routes = new Map<string, TenantRoute>()));
    const key = `${identity}:${permission}`;
    let route = routes.get(key);
    if (!route) routes.set(key, (route = this.#router.route(tenant, identity, permission)));
    return route;
  }

  /** A tenant handle on the (memoised) route; `extra` statements run before the route's prelude. */
  #dbFor(
    tenant: Tenant,
    gate: (tenant: Tenant) => void,
    identity: Identity,
    extra: readonly PreludeStatement[] = [],
    permission: Permission = 'admin',
  ): PooledTenantDb {
    let route = this.#route(tenant, identity, checkPermission(permission));
    if (extra.length > 0) route = { ...route, prelude: [...extra, ...route.prelude] };
    return new PooledTenantDb(tenant, route, (target) => this.#pools.acquire(target), gate);
  }

  db(): TenantDb {
    const context = tryGetTenantContext();
    if (context?.db instanceof PooledTenantDb) return context.db;
    return this.#dbFor(getTenant(), this.#gate(false), 'app');
  }

  async effective<T>(ref: TenantRef, fn: (db: TenantDb) => Promise<T>): Promise<T> {
    const me = tryGetTenantContext()?.tenant;
    if (me?.kind !== 'super') {
      throw new TenantryError('FORBIDDEN', { problem: 'Only a super tenant can set an effective tenant.' });
    }
    return this.withTenant(ref, fn);
  }

  crossTenant(
    options: CrossTenantOptions & { readonly asOperator?: boolean },
    failures: ScanFailure[] = [],
  ): AsyncGenerator<ScanRow> {
    if (options.asOperator !== true && tryGetTenantContext()?.tenant.kind !== 'super') {
      throw new TenantryError('FORBIDDEN', {
        problem: 'Only a super tenant (or the operator) can scan across tenants.',
      });
    }
    this.#scanHost ??= createScanHost({
      admin: this.#admin,
      catalog: this.catalog,
      route: (tenant) => this.#route(tenant, 'app', 'admin'),
      acquire: (target) => this.#pools.acquire(target),
      check: (tenant) => this.#gate(false)(tenant),
      budget: () => this.#pools.stats().servers.find((s) => s.server === 'main')?.budget ?? 1,
    });
    return crossTenantScan(this.#scanHost, options, failures);
  }

  /** What cross-tenant scans use of this instance (application-role routes, the pool of pools). */
  #scanHost: ScanHost | undefined;

  poolStats(): PoolStats {
    return this.#pools.stats();
  }

  startGateway(options?: GatewayOptions): Promise<Gateway> {
    this.#checkOpen();
    const host = createGatewayHost({
      logger: this.#logger,
      findUser: (ref) => this.users.find(ref),
      authorizeToken: (token) => this.authorize(token),
      revoked: (id) => this.tokens.isRevoked(id),
      tenant: (ref) => this.catalog.get(ref),
      ensureLoginRole: (tenant) => this.#loginReady.ready(tenant),
      route: (tenant, permission) => this.tenantRoute(tenant, permission),
      acquire: (target) => this.#pools.acquire(target),
      tryAcquire: (target) => this.#pools.tryAcquire(target),
      query: (sql) => this.#admin.query(sql),
      observe: (tenant, seconds, ok) => this.metrics.observe(tenant, seconds, ok),
    });
    return Gateway.start(host, options);
  }

  async query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    input: QueryInput,
    values?: readonly unknown[],
  ): Promise<pg.QueryResult<R>> {
    return this.db().query<R>(input, values);
  }

  async transaction<T>(fn: (tx: TenantDb) => Promise<T>): Promise<T> {
    return this.db().transaction(fn);
  }

  #checkOpen(): void {
    if (this.#closed) throw new TenantryError('CLOSED');
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    // Workers first: their running jobs still reach their tenants until they finish or time out.
    await this.#runtime.close();
    this.#closed = true;
    await this.catalog.close();
    await Promise.all([this.#pools.close(), this.#admin.end()]);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
