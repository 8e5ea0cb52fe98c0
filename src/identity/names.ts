import { TenantryError } from '../errors.js';

/** What a user may do: read only, read and write (the default), or administer. */
export type Permission = 'read' | 'write' | 'admin';

/** Every permission, weakest first. */
export const PERMISSIONS: readonly Permission[] = ['read', 'write', 'admin'];

/** The authentication system of tenantry's own users (scrypt password hashes in the catalog). */
export const BUILTIN_AUTH = 'builtin';

const DOMAIN_NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,62}$/;
const USER_NAME = /^[A-Za-z0-9][A-Za-z0-9_.+-]{0,62}$/;
const AUTH_SYSTEM = /^[a-z][a-z0-9_-]{0,62}$/;
const MAX_PASSWORD = 1024;

/** A user named as `user@domain`, split; `domain` is `''` for the blank domain. */
export interface UserRef {
  /** The user's name as written. */
  readonly user: string;
  /** The domain's name as written (`''`: the blank domain, i.e. the default tenant). */
  readonly domain: string;
}

/**
 * Checks a domain name: a letter, then letters, digits, `_`, `.` or `-` (at most 63), or `''`
 * for the blank domain when `allowBlank`. Throws `TENANTRY_ERR_INVALID_ARGUMENT`.
 */
export function checkDomainName(name: unknown, allowBlank: boolean): string {
  if (typeof name === 'string' && (DOMAIN_NAME.test(name) || (allowBlank && name === ''))) return name;
  throw new TenantryError('INVALID_ARGUMENT', {
    what: 'domain name',
    problem: `${JSON.stringify(name)} must start with a letter and hold only letters, digits, _ . - (at most 63)`,
  });
}

/**
 * Splits `alice@HomeDepot` into user and domain (`alice` alone: the blank domain) and checks
 * both names. Throws `TENANTRY_ERR_INVALID_ARGUMENT` for a malformed reference.
 */
export function parseUserRef(ref: unknown): UserRef {
  const parts = typeof ref === 'string' ? ref.split('@') : [];
  const [user = '', domain = '', ...rest] = parts;
  if (parts.length === 0 || rest.length > 0 || !USER_NAME.test(user)) {
    throw new TenantryError('INVALID_ARGUMENT', {
      what: 'user',
      problem: `${JSON.stringify(ref)} is not user@domain (a user name is a letter or digit, then letters, digits, _ . + -, at most 63)`,
    });
  }
  return { user, domain: checkDomainName(domain, true) };
}

/** Like {@link parseUserRef}, but answers `undefined` instead of throwing (for logins). */
export function tryParseUserRef(ref: unknown): UserRef | undefined {
  try {
    return parseUserRef(ref);
  } catch {
    return undefined;
  }
}

/** `alice@HomeDepot`, or `alice` in the blank domain. */
export function formatUserRef(ref: UserRef): string {
  return ref.domain === '' ? ref.user : `${ref.user}@${ref.domain}`;
}

/** Checks a permission name; throws `TENANTRY_ERR_INVALID_ARGUMENT`. */
export function checkPermission(permission: unknown): Permission {
  if (PERMISSIONS.includes(permission as Permission)) return permission as Permission;
  throw new TenantryError('INVALID_ARGUMENT', {
    what: 'permission',
    problem: `${JSON.stringify(permission)} is not read, write or admin`,
  });
}

/** Checks an authentication system name (`builtin` or a lower-case name); throws `INVALID_ARGUMENT`. */
export function checkAuthSystem(name: unknown): string {
  if (typeof name === 'string' && AUTH_SYSTEM.test(name)) return name;
  throw new TenantryError('INVALID_ARGUMENT', {
    what: 'authentication system',
    problem: `${JSON.stringify(name)} must be builtin or a lower-case name of letters, digits, _ and -`,
  });
}

/** Checks a password: a non-empty string of at most 1024 characters; throws `INVALID_ARGUMENT`. */
export function checkPassword(password: unknown): string {
  if (typeof password === 'string' && password.length > 0 && password.length <= MAX_PASSWORD) return password;
  throw new TenantryError('INVALID_ARGUMENT', {
    what: 'password',
    problem: `it must be a non-empty string of at most ${MAX_PASSWORD} characters`,
  });
}
