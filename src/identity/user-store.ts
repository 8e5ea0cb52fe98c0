import pg from 'pg';
import { TenantryError } from '../errors.js';
import {
  BUILTIN_AUTH,
  checkDomainName,
  checkPassword,
  checkPermission,
  formatUserRef,
  parseUserRef,
  type Permission,
  type UserRef,
} from './names.js';
import { hashPassword } from './password.js';
import { scramVerifier } from './scram.js';

/** A sign-on user as recorded in the catalog (never with its password hash). */
export interface User {
  /** The user's name as first written. */
  readonly name: string;
  /** The display name of its domain (`''`: the blank domain). */
  readonly domain: string;
  /** `name@domain`, or `name` in the blank domain. */
  readonly ref: string;
  /** The tenant the user acts for (its domain's). */
  readonly tenant: { readonly id: number; readonly name: string };
  readonly permission: Permission;
  readonly createdAt: Date;
}

/** A user with what a login needs: its hash and its domain's authentication system. */
export interface UserRecord extends User {
  readonly passwordHash: string | null;
  /** SCRAM-SHA-256 verifier for gateway logins (null for users without a builtin password). */
  readonly scramVerifier: string | null;
  readonly authSystem: string;
}

/** Options of {@link UserStore.add}. */
export interface AddUserOptions {
  /** Required in `builtin` domains; other domains' authenticators check passwords themselves. */
  readonly password?: string;
  /** `read`, `write` (default) or `admin`. */
  readonly permission?: Permission;
}

interface UserRow {
  name: string;
  domain: string;
  tenant_id: number;
  tenant_name: string;
  permission: Permission;
  created_at: Date;
  password_hash: string | null;
  scram_verifier: string | null;
  auth_system: string;
}

const SELECT = `SELECT u.name, d.display_name AS domain, d.tenant_id, t.name AS tenant_name, u.permission,
       u.created_at, u.password_hash, u.scram_verifier, d.auth_system
  FROM tenantry.app_user u
  JOIN tenantry.domain d ON d.name = u.domain
  JOIN tenantry.tenant t ON t.id = d.tenant_id`;

function toUser(row: UserRow): User {
  return {
    name: row.name,
    domain: row.domain,
    ref: formatUserRef({ user: row.name, domain: row.domain }),
    tenant: { id: row.tenant_id, name: row.tenant_name },
    permission: row.permission,
    createdAt: row.created_at,
  };
}

/** Tenantry's own users, `user@domain` (seed 004), with scrypt-hashed passwords. */
export class UserStore {
  readonly #pool: pg.Pool;

  constructor(pool: pg.Pool) {
    this.#pool = pool;
  }

  /**
   * Adds user `ref` (`alice@HomeDepot`; `alice` alone lives in the blank domain). Throws
   * `TENANTRY_ERR_INVALID_ARGUMENT` (bad name, permission or password, or no password in a
   * `builtin` domain), `TENANTRY_ERR_DOMAIN_NOT_FOUND` and `TENANTRY_ERR_USER_EXISTS`.
   */
  async add(ref: string, options: AddUserOptions = {}): Promise<User> {
    const parsed = parseUserRef(ref);
    const permission = checkPermission(options.permission ?? 'write');
    const password = options.password === undefined ? undefined : checkPassword(options.password);
    const { rows } = await this.#pool.query<{ auth_system: string }>(
      'SELECT auth_system FROM tenantry.domain WHERE name = lower($1)',
      [parsed.domain],
    );
    const authSystem = rows[0]?.auth_system;
    if (authSystem === undefined) throw new TenantryError('DOMAIN_NOT_FOUND', { domain: parsed.domain });
    if (authSystem === BUILTIN_AUTH && password === undefined) {
      throw new TenantryError('INVALID_ARGUMENT', {
        what: 'password',
        problem: `users of builtin domains need one (${formatUserRef(parsed)})`,
      });
    }
    const hash = password === undefined ? null : await hashPassword(password);
    const scram = password === undefined ? null : await scramVerifier(password);
    try {
      await this.#pool.query(
        `INSERT INTO tenantry.app_user (domain, name, password_hash, scram_verifier, permission)
         VALUES (lower($1), $2, $3, $4, $5)`,
        [parsed.domain, parsed.user, hash, scram, permission],
      );
    } catch (error) {
      if (error instanceof pg.DatabaseError && error.code === '23505') {
        throw new TenantryError('USER_EXISTS', { user: formatUserRef(parsed) }, { cause: error });
      }
      // The domain was removed since it was read.
      if (error instanceof pg.DatabaseError && error.code === '23503') {
        throw new TenantryError('DOMAIN_NOT_FOUND', { domain: parsed.domain }, { cause: error });
      }
      throw error;
    }
    return this.show(ref);
  }

  /** Every user (of one domain with `{ domain }`), ordered by domain and name. */
  async list(options: { domain?: string } = {}): Promise<User[]> {
    if (options.domain === undefined) {
      const { rows } = await this.#pool.query<UserRow>(`${SELECT} ORDER BY u.domain, u.name_key`);
      return rows.map(toUser);
    }
    const domain = checkDomainName(options.domain, true);
    const { rows } = await this.#pool.query<UserRow>(
      `${SELECT} WHERE u.domain = lower($1) ORDER BY u.name_key`,
      [domain],
    );
    if (rows.length === 0) {
      const known = await this.#pool.query('SELECT 1 FROM tenantry.domain WHERE name = lower($1)', [domain]);
      if (!known.rowCount) throw new TenantryError('DOMAIN_NOT_FOUND', { domain });
    }
    return rows.map(toUser);
  }

  /** One user; throws `TENANTRY_ERR_INVALID_ARGUMENT` and `TENANTRY_ERR_USER_NOT_FOUND`. */
  async show(ref: string): Promise<User> {
    const record = await this.load(parseUserRef(ref));
    if (!record) throw new TenantryError('USER_NOT_FOUND', { user: String(ref) });
    return {
      name: record.name,
      domain: record.domain,
      ref: record.ref,
      tenant: record.tenant,
      permission: record.permission,
      createdAt: record.createdAt,
    };
  }

  /**
   * @internal The user with its hash and auth system, by primary key; `undefined` when unknown.
   * Logins and principals look users up here (a subclass may answer from a cache).
   */
  find(ref: UserRef): Promise<UserRecord | undefined> {
    return this.load(ref);
  }

  /** @internal {@link find}, always read from the catalog. */
  async load(ref: UserRef): Promise<UserRecord | undefined> {
    const { rows } = await this.#pool.query<UserRow>(
      `${SELECT} WHERE u.domain = lower($1) AND u.name_key = lower($2)`,
      [ref.domain, ref.user],
    );
    const row = rows[0];
    if (!row) return undefined;
    return {
      ...toUser(row),
      passwordHash: row.password_hash,
      scramVerifier: row.scram_verifier,
      authSystem: row.auth_system,
    };
  }

  /** Removes a user; its principals are refused from then on. Throws `TENANTRY_ERR_USER_NOT_FOUND`. */
  async remove(ref: string): Promise<void> {
    const parsed = parseUserRef(ref);
    const { rowCount } = await this.#pool.query(
      'DELETE FROM tenantry.app_user WHERE domain = lower($1) AND name_key = lower($2)',
      [parsed.domain, parsed.user],
    );
    if (!rowCount) throw new TenantryError('USER_NOT_FOUND', { user: formatUserRef(parsed) });
  }

  /** Sets a new password. Throws `TENANTRY_ERR_INVALID_ARGUMENT` and `TENANTRY_ERR_USER_NOT_FOUND`. */
  async setPassword(ref: string, password: string): Promise<void> {
    const parsed = parseUserRef(ref);
    const checked = checkPassword(password);
    const hash = await hashPassword(checked);
    const scram = await scramVerifier(checked);
    const { rowCount } = await this.#pool.query(
      `UPDATE tenantry.app_user SET password_hash = $3, scram_verifier = $4
       WHERE domain = lower($1) AND name_key = lower($2)`,
      [parsed.domain, parsed.user, hash, scram],
    );
    if (!rowCount) throw new TenantryError('USER_NOT_FOUND', { user: formatUserRef(parsed) });
  }
}
