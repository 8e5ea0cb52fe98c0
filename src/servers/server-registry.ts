import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inTransaction, type CatalogRoles, type CredentialStore } from '../catalog/index.js';
import { describeUrl, withCredentials } from '../connection-url.js';
import { TenantryError } from '../errors.js';
import type { PoolManager } from '../pool/index.js';

/** A registered PostgreSQL server. */
export interface ServerInfo {
  readonly name: string;
  /** Connection budget of this process on it (null: derived from max_connections). */
  readonly budget: number | null;
  /** Tenants placed on it. */
  readonly tenants: number;
}

const NAME = /^[a-z][a-z0-9_-]{0,62}$/;

/** Whether `url` logs in (a wrong password, or any other failure: false). */
async function logsIn(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function probe(url: string, fn: (client: pg.Client) => Promise<void>): Promise<void> {
  const client = new pg.Client({ connectionString: url, application_name: 'tenantry-operator' });
  try {
    await client.connect();
  } catch (error) {
    throw new TenantryError(
      'DATABASE_UNREACHABLE',
      { where: describeUrl(url), problem: error instanceof Error ? error.message : String(error) },
      { cause: error },
    );
  }
  try {
    await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** The budget of a server: max_connections minus reserved connections minus `reserve`. */
export async function deriveBudget(db: Pick<pg.ClientBase, 'query'>, reserve: number): Promise<number> {
  const { rows } = await db.query<{ max: number; reserved: number }>(
    `SELECT current_setting('max_connections')::int AS max,
            current_setting('superuser_reserved_connections')::int
              + coalesce(current_setting('reserved_connections', true)::int, 0) AS reserved`,
  );
  const row = rows[0];
  return Math.max(2, (row?.max ?? 100) - (row?.reserved ?? 3) - reserve);
}

/**
 * The servers tenants can be placed on — the shard map. `main` is the catalog's own server;
 * others are added with an operator URL (sealed in the catalog). Each has a connection budget
 * in the pool manager.
 */
export class ServerRegistry {
  readonly #admin: pg.Pool;
  readonly #mainUrl: string;
  readonly #credentials: CredentialStore;
  readonly #pools: PoolManager;
  readonly #roles: CatalogRoles;
  readonly #reserve: number;
  readonly #mainAppPassword: string;

  constructor(options: {
    admin: pg.Pool;
    mainUrl: string;
    credentials: CredentialStore;
    pools: PoolManager;
    roles: CatalogRoles;
    reserve: number;
    /** The application role's password on the catalog's own server. */
    mainAppPassword: string;
  }) {
    this.#admin = options.admin;
    this.#mainUrl = options.mainUrl;
    this.#credentials = options.credentials;
    this.#pools = options.pools;
    this.#roles = options.roles;
    this.#reserve = options.reserve;
    this.#mainAppPassword = options.mainAppPassword;
  }

  /**
   * Registers a server: checks it answers and runs PostgreSQL ≥ 15, creates tenantry's
   * application role there, seals its URL, and gives it a connection budget. Throws
   * `TENANTRY_ERR_INVALID_ARGUMENT` for a bad name, `TENANTRY_ERR_DATABASE_UNREACHABLE`.
   */
  async add(name: string, url: string, options: { budget?: number } = {}): Promise<ServerInfo> {
    if (typeof name !== 'string' || !NAME.test(name) || name === 'main') {
      throw new TenantryError('INVALID_ARGUMENT', {
        what: 'server name',
        problem: `${JSON.stringify(name)} must be lower-case letters, digits, _ or -, start with a letter, and not be main`,
      });
    }
    if (typeof url !== 'string' || !/^postgres(ql)?:\/\//.test(url)) {
      throw new TenantryError('INVALID_ARGUMENT', {
        what: 'server URL',
        problem: 'expected postgresql://user:password@host:port/db',
      });
    }
    if (options.budget !== undefined && !(Number.isInteger(options.budget) && options.budget > 0)) {
      throw new TenantryError('INVALID_ARGUMENT', { what: 'budget', problem: 'expected a positive integer' });
    }
    let budget = options.budget;
    await inTransaction(this.#admin, async (client) => {
      // Registered first (in this transaction): a name already taken is refused before anything
      // on the server changes.
      await client.query('INSERT INTO tenantry.server (name, budget) VALUES ($1, $2)', [
        name,
        options.budget ?? null,
      ]);
      let appPassword = '';
      await probe(url, async (remote) => {
        const { rows } = await remote.query<{ num: string; version: string }>(
          "SELECT current_setting('server_version_num') AS num, current_setting('server_version') AS version",
        );
        if (Number(rows[0]?.num) < 150000)
          throw new TenantryError('SERVER_VERSION', { found: rows[0]?.version ?? '?' });
        budget ??= await deriveBudget(remote, this.#reserve);
        appPassword = await this.#appRole(remote, url, client);
      });
      await this.#credentials.put(client, `server:${name}`, 'url', url);
      await this.#credentials.put(client, `server:${name}`, 'app_password', appPassword);
    }).catch((error: unknown) => {
      if (error instanceof pg.DatabaseError && error.code === '23505') {
        throw new TenantryError('INVALID_ARGUMENT', {
          what: 'server name',
          problem: `${name} is already registered`,
        });
      }
      throw error;
    });
    this.#pools.setServer(name, budget ?? 10);
    return { name, budget: options.budget ?? null, tenants: 0 };
  }

  /**
   * Makes sure the application role exists on a server being added and answers its password.
   * When the role is already there and logs in with a password this catalog knows — the server
   * is the catalog's own cluster, or one registered under another name — that password is kept:
   * resetting it would lock out every pool that uses it.
   */
  async #appRole(remote: pg.Client, url: string, catalog: pg.ClientBase): Promise<string> {
    const app = this.#roles.app;
    const exists = await remote.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [app]);
    if (exists.rowCount) {
      const known = [this.#mainAppPassword];
      const { rows } = await catalog.query<{ owner: string }>(
        "SELECT owner FROM tenantry.credential WHERE owner LIKE 'server:%' AND field = 'app_password'",
      );
      for (const { owner } of rows) known.push(await this.#credentials.get(owner, 'app_password'));
      for (const password of known) if (await logsIn(withCredentials(url, app, password))) return password;
    }
    const password = randomBytes(24).toString('hex');
    const attributes = `LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT PASSWORD ${pg.escapeLiteral(password)}`;
    const role = pg.escapeIdentifier(app);
    await remote.query(
      exists.rowCount ? `ALTER ROLE ${role} ${attributes}` : `CREATE ROLE ${role} ${attributes}`,
    );
    return password;
  }

  /** Every registered server with its tenant count. */
  async list(): Promise<ServerInfo[]> {
    const { rows } = await this.#admin.query<ServerInfo>(
      `SELECT s.name, s.budget, (SELECT count(*)::int FROM tenantry.tenant t WHERE t.server = s.name) AS tenants
       FROM tenantry.server s ORDER BY s.name <> 'main', s.name`,
    );
    return rows;
  }

  /** Forgets a server that holds no tenant. Throws `TENANTRY_ERR_SERVER_IN_USE` otherwise. */
  async remove(name: string): Promise<void> {
    if (name === 'main')
      throw new TenantryError('INVALID_ARGUMENT', { what: 'server', problem: 'main cannot be removed' });
    await inTransaction(this.#admin, async (client) => {
      // The row lock holds off tenants created or moved onto it meanwhile (their foreign key).
      const { rows } = await client.query<{ tenants: number }>(
        `SELECT (SELECT count(*)::int FROM tenantry.tenant t WHERE t.server = s.name)
              + (SELECT count(*)::int FROM tenantry.tenant_move m WHERE m.target ->> 'server' = s.name) AS tenants
         FROM tenantry.server s WHERE s.name = $1 FOR UPDATE`,
        [name],
      );
      const server = rows[0];
      if (!server) throw new TenantryError('SERVER_NOT_FOUND', { server: name });
      if (server.tenants > 0)
        throw new TenantryError('SERVER_IN_USE', { server: name, tenants: server.tenants });
      await client.query('DELETE FROM tenantry.server WHERE name = $1', [name]);
      await this.#credentials.remove(client, `server:${name}`);
    }).catch((error: unknown) => {
      if (error instanceof pg.DatabaseError && error.code === '23503') {
        throw new TenantryError('SERVER_IN_USE', { server: name, tenants: 1 }, { cause: error });
      }
      throw error;
    });
    this.#pools.removeServer(name);
  }

  /** The operator URL of a server. */
  async url(name: string): Promise<string> {
    if (name === 'main') return this.#mainUrl;
    return this.#credentials.get(`server:${name}`, 'url');
  }

  /** The application role's password on a server (`main`'s is the catalog's own). */
  async appPassword(name: string, mainPassword: string): Promise<string> {
    if (name === 'main') return mainPassword;
    return this.#credentials.get(`server:${name}`, 'app_password');
  }

  /**
   * Creates tablespace `name` at `location` on a registered server (a storage area for schema
   * and database tenants, `tenantry tenant create --tablespace`). `location` is an absolute,
   * empty directory on the server's machine owned by the OS user PostgreSQL runs as; it needs
   * a superuser operator URL. Throws `TENANTRY_ERR_INVALID_ARGUMENT`,
   * `TENANTRY_ERR_SERVER_NOT_FOUND`, `TENANTRY_ERR_DATABASE_UNREACHABLE`.
   */
  async createTablespace(server: string, name: string, location: string): Promise<void> {
    if (typeof name !== 'string' || !/^[a-z_][a-z0-9_]{0,62}$/.test(name) || name.startsWith('pg_')) {
      throw new TenantryError('INVALID_ARGUMENT', {
        what: 'tablespace name',
        problem: `${JSON.stringify(name)} must be lower-case letters, digits or _, and not start with pg_`,
      });
    }
    if (typeof location !== 'string' || !location.startsWith('/')) {
      throw new TenantryError('INVALID_ARGUMENT', {
        what: 'tablespace location',
        problem: 'expected an absolute directory path on the server machine',
      });
    }
    const { rowCount } = await this.#admin.query('SELECT 1 FROM tenantry.server WHERE name = $1', [server]);
    if (!rowCount) throw new TenantryError('SERVER_NOT_FOUND', { server });
    await probe(await this.url(server), async (client) => {
      await client.query(
        `CREATE TABLESPACE ${pg.escapeIdentifier(name)} LOCATION ${pg.escapeLiteral(location)}`,
      );
      await client.query(
        `GRANT CREATE ON TABLESPACE ${pg.escapeIdentifier(name)} TO ${pg.escapeIdentifier(this.#roles.owner)}`,
      );
    });
  }

  /** Gives every registered server its budget in the pool manager (at start-up). */
  async load(defaultBudget: number | undefined): Promise<void> {
    const { rows } = await this.#admin.query<{ name: string; budget: number | null }>(
      'SELECT name, budget FROM tenantry.server',
    );
    for (const row of rows) {
      if (row.name === 'main') continue;
      let budget = row.budget ?? defaultBudget;
      if (budget === undefined) {
        // An unreachable server still gets a modest budget; its tenants' checkouts fail clearly.
        budget = 10;
        await probe(await this.url(row.name), async (client) => {
          budget = await deriveBudget(client, this.#reserve);
        }).catch(() => undefined);
      }
      this.#pools.setServer(row.name, budget);
    }
  }
}
