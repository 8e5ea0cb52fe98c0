import { randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import {
  inTransaction,
  TENANT_COLUMNS,
  tenantFaceSchema,
  tenantObjectName,
  toTenant,
  type CatalogCache,
  type CatalogRoles,
  type CredentialStore,
  type Tenant,
  type TenantIsolation,
  type TenantRef,
  type TenantRow,
  type TenantState,
} from '../catalog/index.js';
import { TenantryError } from '../errors.js';
import {
  createTenantRole,
  provisionSchema,
  setRoleStatementTimeout,
  tenantCredentialOwner,
  type DatabaseProvisioner,
  type PermissionRoles,
} from '../isolation/index.js';
import { withClient } from '../isolation/database.js';
import { TENANT_OBJECTS_LOCK } from './orphans.js';
import { dropTenant, recordObjects, whereRef } from './tenant-drop.js';
import { TenantRepair, type RepairOptions, type RepairReport } from './tenant-repair.js';
import {
  checkTablespaceName,
  moveDatabase,
  moveSchemaRelations,
  requireOwnStorage,
  requireTablespace,
} from './tenant-tablespace.js';
import type { Permission } from '../identity/names.js';

const NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,62}$/;

/** What {@link TenantStore.create} accepts. */
export interface CreateTenantInput {
  /** Unique (case-insensitively) name: a letter, then letters, digits, `_`, `.` or `-`; ≤ 63 chars. */
  readonly name: string;
  /** `regular` (default) or `super`. */
  readonly kind?: 'regular' | 'super';
  /** `shared` (default), `schema` or `database`. */
  readonly isolation?: TenantIsolation;
  /** Registered server of a `database` tenant (default `main`). */
  readonly server?: string;
  /**
   * Give a shared tenant its own login role (schema tenants always get one), for faces that
   * run SQL the tenant wrote. Needs a master key: the password is sealed in the catalog.
   */
  readonly loginRole?: boolean;
  /**
   * Tablespace (storage area, seed 004's areas) of a `schema` or `database` tenant on its
   * server: its tables and indexes, or its whole database, are created there.
   */
  readonly tablespace?: string;
}

/** Options of {@link TenantStore.setTablespace}. */
export interface SetTablespaceOptions {
  /**
   * Database tenants: how long sessions inside a transaction get to finish before they are
   * ended for the move (default 5,000 ms).
   */
  readonly graceMs?: number;
}

/** Called after a tenant's objects were dropped, to close its pools. */
export type TenantDroppedHook = (tenant: Tenant) => void;

/** What {@link TenantStore.setLimits} accepts; a field left out keeps its current value. */
export interface TenantLimits {
  /**
   * Each statement of the tenant is cancelled after this many ms (SQLSTATE 57014), on every
   * face; `null` removes the limit (the server's default applies).
   */
  readonly statementTimeoutMs?: number | null;
}

/** The largest statement timeout PostgreSQL accepts (ms). */
const MAX_TIMEOUT_MS = 2_147_483_647;
/** The longest grace a database tenant's sessions get before a tablespace move ends them (1 h). */
const MAX_GRACE_MS = 3_600_000;

/** Tenant lifecycle operations on the catalog, run by the operator's connection. */
export class TenantStore {
  readonly #pool: pg.Pool;
  readonly #cache: CatalogCache;
  readonly #roles: CatalogRoles;
  readonly #credentials: CredentialStore;
  readonly #onDropped: TenantDroppedHook;
  readonly #databases: DatabaseProvisioner;
  readonly #permissionRoles: PermissionRoles;
  readonly #serverUrl: ((server: string) => Promise<string>) | undefined;
  readonly #closePools: ((tenant: Tenant) => void) | undefined;

  constructor(options: {
    pool: pg.Pool;
    cache: CatalogCache;
    roles: CatalogRoles;
    credentials: CredentialStore;
    databases: DatabaseProvisioner;
    permissionRoles: PermissionRoles;
    onDropped: TenantDroppedHook;
    /** The operator URL of a registered server (tablespaces of database tenants). */
    serverUrl?: (server: string) => Promise<string>;
    /** Closes this process's pools of a tenant (before its database is moved). */
    closePools?: (tenant: Tenant) => void;
  }) {
    this.#serverUrl = options.serverUrl;
    this.#closePools = options.closePools;
    this.#permissionRoles = options.permissionRoles;
    this.#pool = options.pool;
    this.#cache = options.cache;
    this.#roles = options.roles;
    this.#credentials = options.credentials;
    this.#databases = options.databases;
    this.#onDropped = options.onDropped;
  }

  /** Runs `work` in one transaction on the operator's connection. */
  async #transaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    return inTransaction(this.#pool, work);
  }

  /**
   * Creates a tenant, online (one row insert, no table lock). Throws
   * `TENANTRY_ERR_INVALID_ARGUMENT` for a bad name, kind or isolation and
   * `TENANTRY_ERR_TENANT_EXISTS` when the name is taken.
   */
  async create(input: CreateTenantInput): Promise<Tenant> {
    const kind = input.kind ?? 'regular';
    const isolation = input.isolation ?? 'shared';
    if (typeof input.name !== 'string' || !NAME.test(input.name)) {
      throw new TenantryError('INVALID_ARGUMENT', {
        what: 'tenant name',
        problem: `${JSON.stringify(input.name)} must start with a letter and hold only letters, digits, _ . - (at most 63)`,
      });
    }
    if (kind !== 'regular' && kind !== 'super') {
      throw new TenantryError('INVALID_ARGUMENT', {
        what: 'tenant kind',
        problem: `${String(kind)} is not regular or super`,
      });
    }
    if (isolation !== 'shared' && isolation !== 'schema' && isolation !== 'database') {
      throw new TenantryError('INVALID_ARGUMENT', {
        what: 'isolation',
        problem: `${String(isolation)} is not shared, schema or database`,
      });
    }
    const tablespace = input.tablespace === undefined ? undefined : checkTablespaceName(input.tablespace);
    if (tablespace !== undefined) requireOwnStorage({ name: input.name, isolation, kind });
    const idExpr =
      kind === 'super' ? "-nextval('tenantry.super_tenant_id')" : "nextval('tenantry.regular_tenant_id')";
    if (isolation === 'database')
      return this.#createDatabaseTenant(input.name, kind, idExpr, input.server ?? 'main', tablespace);
    if (input.server !== undefined && input.server !== 'main') {
      throw new TenantryError('INVALID_ARGUMENT', {
        what: 'server',
        problem:
          'shared and schema tenants live on the catalog server (main); place database tenants elsewhere',
      });
    }
    if (tablespace !== undefined) await requireTablespace(this.#pool, tablespace, 'main');
    const uuid = randomUUID();
    const objectName = tenantObjectName(uuid);
    try {
      const id = await this.#transaction(async (client) => {
        // Schema tenants one at a time: two interleaved creations (role membership grants, then
        // the template clone's grants) deadlock in PostgreSQL.
        if (isolation === 'schema') await client.query('SELECT pg_advisory_xact_lock(7303446192)');
        const { rows } = await client.query<{ id: number }>(
          `INSERT INTO tenantry.tenant (id, uuid, name, kind, isolation) VALUES (${idExpr}, $1, $2, $3, $4) RETURNING id`,
          [uuid, input.name, kind, isolation],
        );
        const tenantId = (rows[0] as { id: number }).id;
        if (isolation === 'schema' || input.loginRole === true) {
          await createTenantRole(client, this.#roles, this.#credentials, {
            id: tenantId,
            uuid,
            roleName: objectName,
            shared: isolation === 'shared',
            state: 'active',
          });
        }
        if (isolation === 'schema') {
          // Its tables and indexes are created in its tablespace, not created and then moved.
          if (tablespace !== undefined) {
            await client.query("SELECT set_config('default_tablespace', $1, true)", [tablespace]);
          }
          await provisionSchema(client, objectName, tenantFaceSchema(uuid), objectName);
          await client.query('UPDATE tenantry.tenant SET schema_name = $2, tablespace = $3 WHERE id = $1', [
            tenantId,
            objectName,
            tablespace ?? null,
          ]);
          if (tablespace !== undefined)
            await client.query("SELECT set_config('default_tablespace', '', true)");
        }
        return tenantId;
      });
      await this.#cache.reload();
      return await this.show(id);
    } catch (error) {
      if (error instanceof pg.DatabaseError && error.code === '23505') {
        throw new TenantryError('TENANT_EXISTS', { tenant: input.name }, { cause: error });
      }
      throw error;
    }
  }

  /**
   * Creates a database tenant: its role and database on the server first (not transactional),
   * then its catalog rows in one transaction; when that fails, the database and role are removed.
   */
  async #createDatabaseTenant(
    name: string,
    kind: string,
    idExpr: string,
    server: string,
    tablespace: string | undefined,
  ): Promise<Tenant> {
    const { rows: taken } = await this.#pool.query(
      'SELECT 1 FROM tenantry.tenant WHERE lower(name) = lower($1)',
      [name],
    );
    if (taken.length > 0) throw new TenantryError('TENANT_EXISTS', { tenant: name });
    const { rows: known } = await this.#pool.query('SELECT 1 FROM tenantry.server WHERE name = $1', [server]);
    if (known.length === 0) throw new TenantryError('SERVER_NOT_FOUND', { server });
    if (tablespace !== undefined) {
      await withClient(await this.#urlOf(server), (client) => requireTablespace(client, tablespace, server));
    }
    const { rows } = await this.#pool.query<{ id: number }>(`SELECT ${idExpr} AS id`);
    const id = (rows[0] as { id: number }).id;
    const uuid = randomUUID();
    const objectName = tenantObjectName(uuid);
    const password = randomBytes(24).toString('base64url');
    // The role and database are made outside any catalog transaction: recorded first (under the
    // tenant's lock), so that `tenants.repair()` removes them when this process dies half-way.
    // What a process that died creating or dropping a database tenant left there goes first.
    await this.#repairer().finishRecorded(server);
    const lock = await this.#pool.connect();
    let locked = false;
    try {
      await lock.query('SELECT pg_advisory_lock($1, hashtext($2))', [TENANT_OBJECTS_LOCK, uuid]);
      locked = true;
      await recordObjects(lock, 'create', uuid, server, objectName, [objectName]);
      await this.#databases.create({ id, uuid, name }, server, {
        database: objectName,
        role: objectName,
        password,
        ...(tablespace === undefined ? {} : { tablespace }),
      });
      try {
        await lock.query('BEGIN');
        await lock.query(
          `INSERT INTO tenantry.tenant (id, uuid, name, kind, isolation, server, database_name, tablespace)
           VALUES ($1, $2, $3, $4, 'database', $5, $6, $7)`,
          [id, uuid, name, kind, server, objectName, tablespace ?? null],
        );
        await lock.query('INSERT INTO tenantry.tenant_role (role_name, tenant_id) VALUES ($1, $2)', [
          objectName,
          id,
        ]);
        await this.#credentials.put(lock, tenantCredentialOwner(id), 'password', password);
        await lock.query('DELETE FROM tenantry.tenant_object_intent WHERE tenant_uuid = $1', [uuid]);
        await lock.query('COMMIT');
      } catch (error) {
        await lock.query('ROLLBACK').catch(() => undefined);
        throw error;
      }
    } catch (error) {
      // Undo what was made; the records stay when that fails too (repair finishes it).
      if (locked) {
        await this.#databases
          .drop(server, objectName, objectName)
          .then(() => lock.query('DELETE FROM tenantry.tenant_object_intent WHERE tenant_uuid = $1', [uuid]))
          .catch(() => undefined);
      }
      if (error instanceof pg.DatabaseError && error.code === '23505') {
        throw new TenantryError('TENANT_EXISTS', { tenant: name }, { cause: error });
      }
      throw error;
    } finally {
      if (locked)
        await lock
          .query('SELECT pg_advisory_unlock($1, hashtext($2))', [TENANT_OBJECTS_LOCK, uuid])
          .catch(() => undefined);
      lock.release();
    }
    await this.#cache.reload();
    return this.show(id);
  }

  /** The operator URL of `server` (throws when this store was built without server access). */
  async #urlOf(server: string): Promise<string> {
    if (!this.#serverUrl) {
      throw new TenantryError('INVALID_ARGUMENT', {
        what: 'server',
        problem: 'this tenant store cannot reach other servers',
      });
    }
    return this.#serverUrl(server);
  }

  /**
   * Moves a schema or database tenant into tablespace `tablespace` of its server (seed 004's
   * areas), and records it. A schema tenant's tables and indexes move in one transaction (each
   * table locked ACCESS EXCLUSIVE while its files are copied: the tenant's statements wait); a
   * database tenant moves whole with `ALTER DATABASE … SET TABLESPACE`, which needs the
   * database to itself: new sessions are refused meanwhile, sessions in a transaction get
   * `graceMs` to finish, then every session is ended (the tenant's pools reconnect after).
   * Throws `TENANTRY_ERR_TABLESPACE_NOT_FOUND`, `TENANTRY_ERR_TABLESPACE_UNSUPPORTED` (shared
   * tenants) and `TENANTRY_ERR_TENANT_NOT_FOUND`.
   */
  async setTablespace(
    ref: TenantRef,
    tablespace: string,
    options: SetTablespaceOptions = {},
  ): Promise<Tenant> {
    const name = checkTablespaceName(tablespace);
    const grace = options.graceMs;
    if (grace !== undefined && (!Number.isSafeInteger(grace) || grace < 0 || grace > MAX_GRACE_MS)) {
      throw new TenantryError('INVALID_ARGUMENT', {
        what: 'graceMs',
        problem: `expected a whole number of milliseconds from 0 to ${MAX_GRACE_MS}`,
      });
    }
    const tenant = await this.show(ref);
    requireOwnStorage(tenant);
    if (tenant.isolation === 'schema') {
      await this.#transaction(async (client) => {
        await requireTablespace(client, name, tenant.server);
        await moveSchemaRelations(client, tenant, name);
        await client.query('UPDATE tenantry.tenant SET tablespace = $2 WHERE id = $1', [tenant.id, name]);
      });
    } else {
      const database = tenant.databaseName;
      if (!database) throw new TenantryError('TENANT_NOT_FOUND', { tenant: tenant.name });
      await withClient(await this.#urlOf(tenant.server), async (client) => {
        await requireTablespace(client, name, tenant.server);
        await moveDatabase(client, database, name, {
          ...(options.graceMs === undefined ? {} : { graceMs: options.graceMs }),
          closePools: () => this.#closePools?.(tenant),
        });
      });
      await this.#pool.query('UPDATE tenantry.tenant SET tablespace = $2 WHERE id = $1', [tenant.id, name]);
    }
    await this.#cache.reload();
    return this.show(tenant.id);
  }

  /**
   * Gives an existing shared tenant its own login role (no-op when it has one). Needs a master
   * key; see {@link CreateTenantInput.loginRole}.
   */
  async ensureLoginRole(ref: TenantRef): Promise<Tenant> {
    const tenant = await this.show(ref);
    if (tenant.role) return tenant;
    await this.#transaction(async (client) => {
      // The tenant's row lock serialises this with state changes and limits (LOGIN follows the
      // state the role is created under; a disable committed meanwhile is seen here).
      const { rows } = await client.query<{ state: Tenant['state']; timeout: number | null; role: boolean }>(
        `SELECT t.state, t.statement_timeout_ms AS timeout,
                EXISTS (SELECT 1 FROM tenantry.tenant_role r WHERE r.tenant_id = t.id AND r.permission = 'admin') AS role
         FROM tenantry.tenant t WHERE t.id = $1 FOR UPDATE`,
        [tenant.id],
      );
      const current = rows[0];
      if (!current) throw new TenantryError('TENANT_NOT_FOUND', { tenant: tenant.name });
      if (current.role) return;
      await createTenantRole(client, this.#roles, this.#credentials, {
        id: tenant.id,
        uuid: tenant.uuid,
        roleName: tenantObjectName(tenant.uuid),
        shared: tenant.isolation === 'shared',
        state: current.state,
        // the tenant's statement limit (setLimits) holds for a role created after it, too
        statementTimeoutMs: current.timeout,
      });
    });
    await this.#cache.reload();
    return this.show(tenant.id);
  }

  /**
   * The name of the tenant's login role for `permission` (docs/rights.md): its own role for
   * `admin`; for `write` and `read` a member role, created when missing (sessions of the
   * tenant's faces create it on first use anyway). Throws `TENANTRY_ERR_TENANT_NO_ROLE`, and
   * `TENANTRY_ERR_RIGHTS_UNAVAILABLE` for a database tenant whose database cannot enforce it.
   */
  async ensurePermissionRole(ref: TenantRef, permission: Permission): Promise<string> {
    return this.#permissionRoles.ensure(await this.show(ref), permission);
  }

  /** Every tenant, ordered by id (read from the catalog, not the cache). */
  async list(): Promise<Tenant[]> {
    const { rows } = await this.#pool.query<TenantRow>(
      `SELECT ${TENANT_COLUMNS} FROM tenantry.tenant WHERE kind <> 'group' ORDER BY id`,
    );
    return rows.map(toTenant);
  }

  /** One tenant by id, uuid or name; throws `TENANTRY_ERR_TENANT_NOT_FOUND`. */
  async show(ref: TenantRef): Promise<Tenant> {
    const { rows } = await this.#pool.query<TenantRow>(
      `SELECT ${TENANT_COLUMNS} FROM tenantry.tenant WHERE ${whereRef(ref)}`,
      [String(ref)],
    );
    if (!rows[0]) throw new TenantryError('TENANT_NOT_FOUND', { tenant: String(ref) });
    return toTenant(rows[0]);
  }

  /** Refuses every new access to the tenant; its in-flight transactions finish. */
  disable(ref: TenantRef): Promise<Tenant> {
    return this.#setState(ref, 'disabled');
  }

  /** Makes a disabled or locked tenant active again. */
  enable(ref: TenantRef): Promise<Tenant> {
    return this.#setState(ref, 'active');
  }

  /** Leaves the tenant reachable by the operator only. */
  lock(ref: TenantRef): Promise<Tenant> {
    return this.#setState(ref, 'locked');
  }

  /** Same as {@link enable}: a locked tenant becomes active. */
  unlock(ref: TenantRef): Promise<Tenant> {
    return this.#setState(ref, 'active');
  }

  async #setState(ref: TenantRef, state: TenantState): Promise<Tenant> {
    const rows = await this.#transaction(async (client) => {
      const result = await client.query<TenantRow>(
        `UPDATE tenantry.tenant SET state = $2 WHERE ${whereRef(ref)} AND kind <> 'default' RETURNING ${TENANT_COLUMNS}`,
        [String(ref), state],
      );
      // Defence in depth: a disabled or locked tenant's login roles (admin, write, read) cannot
      // log in at all.
      const id = result.rows[0]?.id;
      const { rows: local } = await client.query<{ role_name: string }>(
        `SELECT r.role_name FROM tenantry.tenant_role r JOIN pg_roles p ON p.rolname = r.role_name
         WHERE r.tenant_id = $1 ORDER BY r.role_name`,
        [id ?? null],
      );
      const login = state === 'active' ? 'LOGIN' : 'NOLOGIN';
      for (const { role_name: role } of local) {
        await client.query(`ALTER ROLE ${pg.escapeIdentifier(role)} ${login}`);
      }
      // A database tenant on another server has its roles there: changed before this commits,
      // so a failure there leaves the tenant as it was.
      const row = result.rows[0];
      if (row && row.server !== 'main' && row.isolation === 'database') {
        const { rows: far } = await client.query<{ role_name: string }>(
          'SELECT role_name FROM tenantry.tenant_role WHERE tenant_id = $1 ORDER BY role_name',
          [row.id],
        );
        if (far.length > 0) {
          await withClient(await this.#urlOf(row.server), async (remote) => {
            const { rows: present } = await remote.query<{ rolname: string }>(
              'SELECT rolname FROM pg_roles WHERE rolname = ANY ($1)',
              [far.map((r) => r.role_name)],
            );
            for (const { rolname } of present)
              await remote.query(`ALTER ROLE ${pg.escapeIdentifier(rolname)} ${login}`);
          });
        }
      }
      return result.rows;
    });
    if (!rows[0]) {
      const tenant = await this.show(ref);
      throw new TenantryError('TENANT_KIND', {
        tenant: tenant.name,
        kind: tenant.kind,
        problem: 'the default tenant is always active',
      });
    }
    await this.#cache.reload();
    return toTenant(rows[0]);
  }

  /**
   * Sets the tenant's limits (docs/security.md, "Per-tenant limits"): the catalog row, and on
   * each of the tenant's login roles on this server a role setting (`ALTER ROLE … SET
   * statement_timeout`), in one transaction; this process's pools of the tenant are closed so
   * its next statement runs in a new session under the new limit (other processes: their new
   * sessions, and every transaction on the application-role path at once).
   * The application-role path sets it per transaction. Throws `TENANTRY_ERR_TENANT_NOT_FOUND`
   * and `TENANTRY_ERR_INVALID_ARGUMENT` (not a positive integer of ms, or `null`).
   */
  async setLimits(ref: TenantRef, limits: TenantLimits): Promise<Tenant> {
    const timeout = limits.statementTimeoutMs;
    if (
      timeout !== undefined &&
      timeout !== null &&
      !(Number.isInteger(timeout) && timeout > 0 && timeout <= MAX_TIMEOUT_MS)
    ) {
      throw new TenantryError('INVALID_ARGUMENT', {
        what: 'statementTimeoutMs',
        problem: `${String(timeout)} is not a positive whole number of milliseconds (or null for none)`,
      });
    }
    const tenant = await this.show(ref);
    if (timeout === undefined) return tenant;
    await this.#transaction(async (client) => {
      await client.query('UPDATE tenantry.tenant SET statement_timeout_ms = $2 WHERE id = $1', [
        tenant.id,
        timeout,
      ]);
      const { rows } = await client.query<{ role_name: string }>(
        `SELECT r.role_name FROM tenantry.tenant_role r JOIN pg_roles p ON p.rolname = r.role_name
         WHERE r.tenant_id = $1 ORDER BY r.role_name`,
        [tenant.id],
      );
      for (const { role_name: role } of rows) await setRoleStatementTimeout(client, role, timeout);
    });
    await this.#cache.reload();
    const changed = await this.show(tenant.id);
    this.#closePools?.(changed);
    return changed;
  }

  /**
   * Finds and removes what a process killed during a catalog change left behind, on every
   * registered server: databases and roles of database tenants whose creation or drop did not
   * finish, login roles in this catalog's tenant groups and tenant schemas of the catalog
   * database that belong to no tenant — and brings database tenants that missed a declared
   * table up to the registry. Objects of tenants being moved (`tenantry.tenant_move`), of
   * creations still under way in a live process, and of other catalogs on the same server are
   * left alone. `{ dryRun: true }` only reports. See docs/faults.md.
   */
  repair(options: RepairOptions = {}): Promise<RepairReport> {
    return this.#repairer().run(options);
  }

  #repairer(): TenantRepair {
    return new TenantRepair({
      pool: this.#pool,
      roles: this.#roles,
      databases: this.#databases,
      serverUrl: (server) => this.#urlOf(server),
    });
  }

  /**
   * Deletes the tenant and all its rows in every multi-tenant table, in one transaction,
   * as the maintenance identity. Requires `{ force: true }` (`TENANTRY_ERR_FORCE_REQUIRED`);
   * the default tenant cannot be dropped. Returns the number of rows deleted per table.
   */
  drop(ref: TenantRef, options: { force?: boolean } = {}): Promise<Record<string, number>> {
    return dropTenant(
      {
        pool: this.#pool,
        cache: this.#cache,
        roles: this.#roles,
        credentials: this.#credentials,
        databases: this.#databases,
        onDropped: this.#onDropped,
      },
      ref,
      options,
    );
  }
}
