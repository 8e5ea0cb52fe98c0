import { TenantryError } from '../errors.js';
import { BUILTIN_AUTH, checkAuthSystem } from './names.js';

/** What an authenticator is asked: does this password belong to this user of this domain? */
export interface AuthenticationRequest {
  /** The user's name as the caller wrote it (without `@domain`). */
  readonly user: string;
  /** The domain's display name (`''`: the blank domain). */
  readonly domain: string;
  readonly password: string;
}

/** Checks a password outside tenantry (LDAP, an identity provider …); resolves true to let the user in. */
export type Authenticator = (request: AuthenticationRequest) => Promise<boolean> | boolean;

/**
 * The authentication systems a domain can name besides `builtin`. Registrations live in this
 * process only: register them at start-up in every process that logs users in.
 */
export class AuthenticatorRegistry {
  readonly #systems = new Map<string, Authenticator>();

  /**
   * Registers (or replaces) the authenticator `name`. Throws `TENANTRY_ERR_INVALID_ARGUMENT`
   * for a malformed name, for `builtin` (tenantry's own users) or when `fn` is not a function.
   */
  register(name: string, fn: Authenticator): void {
    checkAuthSystem(name);
    if (name === BUILTIN_AUTH) {
      throw new TenantryError('INVALID_ARGUMENT', {
        what: 'authentication system',
        problem: 'builtin is tenantry’s own and cannot be replaced',
      });
    }
    if (typeof fn !== 'function') {
      throw new TenantryError('INVALID_ARGUMENT', {
        what: 'authenticator',
        problem: 'it must be a function ({ user, domain, password }) => boolean | Promise<boolean>',
      });
    }
    this.#systems.set(name, fn);
  }

  /** Removes the authenticator `name`; answers whether there was one. */
  unregister(name: string): boolean {
    return this.#systems.delete(name);
  }

  /** The names registered in this process, sorted (without `builtin`). */
  names(): string[] {
    return [...this.#systems.keys()].sort();
  }

  /**
   * Asks the authenticator of `authSystem`. Throws `TENANTRY_ERR_AUTH_SYSTEM_UNKNOWN` when it is
   * not registered; an authenticator that throws or answers anything but `true` refuses.
   */
  async check(authSystem: string, request: AuthenticationRequest): Promise<boolean> {
    const fn = this.#systems.get(authSystem);
    if (!fn) throw new TenantryError('AUTH_SYSTEM_UNKNOWN', { domain: request.domain, authSystem });
    try {
      return (await fn(request)) === true;
    } catch {
      return false;
    }
  }
}
