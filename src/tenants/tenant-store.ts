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
  tenantCredentialOwner,
  type DatabaseProvisioner,
  type PermissionRoles,
} from '../isolation/index.js';
import { dropTenant, whereRef } from './tenant-drop.js';
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
}

/** Called after a tenant's objects were dropped, to close its pools. */
export type TenantDroppedHook = (tenant: Tenant) => void;

/** Tenant lifecycle operations on the catalog, run by the operator's connection. */
export class TenantStore {
  readonly #pool: pg.Pool;
  readonly #cache: CatalogCache;
  readonly #roles: CatalogRoles;
  readonly #credentials: CredentialStore;
  readonly #onDropped: TenantDroppedHook;
  readonly #databases: DatabaseProvisioner;
  readonly #permissionRoles: PermissionRoles;

  constructor(options: {
    pool: pg.Pool;
    cache: CatalogCache;
    roles: CatalogRoles;
    credentials: CredentialStore;
    databases: DatabaseProvisioner;
    permissionRoles: PermissionRoles;
    onDropped: TenantDroppedHook;
  }) {
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
    const idExpr =
      kind === 'super' ? "-nextval('tenantry.super_tenant_id')" : "nextval('tenantry.regular_tenant_id')";
    if (isolation === 'database')
      return this.#createDatabaseTenant(input.name, kind, idExpr, input.server ?? 'main');
    if (input.server !== undefined && input.server !== 'main') {
      throw new TenantryError('INVALID_ARGUMENT', {
        what: 'server',
        problem:
          'shared and schema tenants live on the catalog server (main); place database tenants elsewhere',
      });
    }
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
          await provisionSchema(client, objectName, tenantFaceSchema(uuid), objectName);
          await client.query('UPDATE tenantry.tenant SET schema_name = $2 WHERE id = $1', [
            tenantId,
            objectName,
          ]);
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
  async #createDatabaseTenant(name: string, kind: string, idExpr: string, server: string): Promise<Tenant> {
    const { rows: taken } = await this.#pool.query(
      'SELECT 1 FROM tenantry.tenant WHERE lower(name) = lower($1)',
      [name],
    );
    if (taken.length > 0) throw new TenantryError('TENANT_EXISTS', { tenant: name });
    const { rows: known } = await this.#pool.query('SELECT 1 FROM tenantry.server WHERE name = $1', [server]);
    if (known.length === 0) throw new TenantryError('SERVER_NOT_FOUND', { server });
    const { rows } = await this.#pool.query<{ id: number }>(`SELECT ${idExpr} AS id`);
    const id = (rows[0] as { id: number }).id;
    const uuid = randomUUID();
    const objectName = tenantObjectName(uuid);
    const password = randomBytes(24).toString('base64url');
    await this.#databases.create({ id, uuid, name }, server, {
      database: objectName,
      role: objectName,
      password,
    });
    try {
      await this.#transaction(async (client) => {
        await client.query(
          `INSERT INTO tenantry.tenant (id, uuid, name, kind, isolation, server, database_name)
           VALUES ($1, $2, $3, $4, 'database', $5, $6)`,
          [id, uuid, name, kind, server, objectName],
        );
        await client.query('INSERT INTO tenantry.tenant_role (role_name, tenant_id) VALUES ($1, $2)', [
          objectName,
          id,
        ]);
        await this.#credentials.put(client, tenantCredentialOwner(id), 'password', password);
      });
    } catch (error) {
      await this.#databases.drop(server, objectName, objectName).catch(() => undefined);
      if (error instanceof pg.DatabaseError && error.code === '23505') {
        throw new TenantryError('TENANT_EXISTS', { tenant: name }, { cause: error });
      }
      throw error;
    }
    await this.#cache.reload();
    return this.show(id);
  }

  /**
   * Gives an existing shared tenant its own login role (no-op when it has one). Needs a master
   * key; see {@link CreateTenantInput.loginRole}.
   */
  async ensureLoginRole(ref: TenantRef): Promise<Tenant> {
    const tenant = await this.show(ref);
    if (tenant.role) return tenant;
    await this.#transaction((client) =>
      createTenantRole(client, this.#roles, this.#credentials, {
        id: tenant.id,
        uuid: tenant.uuid,
        roleName: tenantObjectName(tenant.uuid),
        shared: tenant.isolation === 'shared',
        state: tenant.state,
      }),
    );
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
      for (const { role_name: role } of local) {
        await client.query(
          `ALTER ROLE ${pg.escapeIdentifier(role)} ${state === 'active' ? 'LOGIN' : 'NOLOGIN'}`,
        );
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
