import type { Tenant } from '../catalog/index.js';
import { TenantryError, isTenantryError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { AuthenticatorRegistry } from './authenticators.js';
import { BUILTIN_AUTH, checkPassword, tryParseUserRef } from './names.js';
import { verifyPassword } from './password.js';
import type { Principal, PrincipalSealer } from './principals.js';
import type { UserRecord, UserStore } from './user-store.js';

/** Options of {@link SignOn.login}. */
export interface LoginOptions {
  /** Lifetime of the principal in seconds (default 3600). */
  readonly expiresInSeconds?: number;
}

/** Logs users in (password → sealed principal) and checks principals presented later. */
export class SignOn {
  readonly #users: UserStore;
  readonly #principals: PrincipalSealer;
  readonly #authenticators: AuthenticatorRegistry;
  readonly #findTenant: (id: number) => Promise<Tenant | undefined>;
  readonly #logger: Logger;

  constructor(options: {
    users: UserStore;
    principals: PrincipalSealer;
    authenticators: AuthenticatorRegistry;
    findTenant: (id: number) => Promise<Tenant | undefined>;
    logger: Logger;
  }) {
    this.#users = options.users;
    this.#principals = options.principals;
    this.#authenticators = options.authenticators;
    this.#findTenant = options.findTenant;
    this.#logger = options.logger;
  }

  /**
   * Checks `password` for user `ref` (`alice@HomeDepot`) and answers a sealed principal. An
   * unknown user, a wrong password and a domain whose authenticator is not registered in this
   * process (logged as an error for the operator) all throw the same `TENANTRY_ERR_AUTH`, after
   * the same scrypt work; a disabled or locked tenant throws `TENANTRY_ERR_TENANT_DISABLED` /
   * `TENANTRY_ERR_TENANT_LOCKED` (only once the password was right). An empty password is
   * `TENANTRY_ERR_INVALID_ARGUMENT` (it never reaches an authenticator: an empty LDAP bind is
   * anonymous).
   */
  async login(ref: string, password: string, options: LoginOptions = {}): Promise<string> {
    this.#principals.requireMasterKey();
    checkPassword(password);
    const ttl = options.expiresInSeconds ?? 3600;
    if (!Number.isInteger(ttl) || ttl <= 0) {
      throw new TenantryError('INVALID_ARGUMENT', {
        what: 'expiresInSeconds',
        problem: 'it must be a positive whole number of seconds',
      });
    }
    const parsed = tryParseUserRef(ref);
    const record = parsed ? await this.#users.find(parsed) : undefined;
    const accepted = await this.#check(record, password);
    if (!record || !accepted) throw new TenantryError('AUTH');
    const tenant = await this.#findTenant(record.tenant.id);
    if (!tenant) throw new TenantryError('AUTH');
    switch (tenant.state) {
      case 'active':
        break;
      case 'disabled':
        throw new TenantryError('TENANT_DISABLED', { tenant: tenant.name });
      case 'locked':
        throw new TenantryError('TENANT_LOCKED', { tenant: tenant.name });
    }
    const issuedAt = new Date();
    return this.#principals.seal({
      user: record.name,
      domain: record.domain,
      tenant: { id: tenant.id, name: tenant.name },
      permission: record.permission,
      issuedAt,
      expiresAt: new Date(issuedAt.getTime() + ttl * 1000),
    });
  }

  /**
   * Builtin users (and unknown ones, against a dummy hash) by scrypt; others by their
   * authenticator, after the same scrypt work against the dummy hash, so that neither the time
   * taken nor the answer tells whether a user of such a domain exists.
   */
  async #check(record: UserRecord | undefined, password: string): Promise<boolean> {
    if (record === undefined || record.authSystem === BUILTIN_AUTH) {
      return verifyPassword(password, record?.passwordHash);
    }
    await verifyPassword(password, undefined);
    try {
      return await this.#authenticators.check(record.authSystem, {
        user: record.name,
        domain: record.domain,
        password,
      });
    } catch (error) {
      if (!isTenantryError(error, 'AUTH_SYSTEM_UNKNOWN')) throw error;
      this.#logger.error({ err: error }, 'login refused: its domain has no authenticator in this process');
      return false;
    }
  }

  /**
   * Opens a principal and checks that its user still exists in the same tenant (a primary-key
   * lookup); answers it with the user's current permission. Throws `TENANTRY_ERR_TOKEN_INVALID`,
   * `TENANTRY_ERR_TOKEN_EXPIRED`, and `TENANTRY_ERR_AUTH` for a removed or moved user.
   */
  async authorize(token: string): Promise<Principal> {
    const principal = await this.#principals.open(token);
    const record = await this.#users.find({ user: principal.user, domain: principal.domain });
    if (!record || record.tenant.id !== principal.tenant.id) throw new TenantryError('AUTH');
    return { ...principal, permission: record.permission };
  }
}
