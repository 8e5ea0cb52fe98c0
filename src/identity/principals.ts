import { inTransaction } from '../catalog/index.js';
import { randomBytes, randomUUID, webcrypto } from 'node:crypto';
import { SignJWT, errors, jwtVerify, type JWTPayload } from 'jose';
import { VerifiedTokens } from './verified-tokens.js';
import type pg from 'pg';
import type { CredentialStore } from '../catalog/index.js';
import { TenantryError } from '../errors.js';
import { PERMISSIONS, type Permission } from './names.js';

/** An imported HMAC key (WebCrypto). */
type CryptoKey = webcrypto.CryptoKey;

/** The JWS `typ` header of a sealed principal; {@link PrincipalSealer.open} requires it. */
export const PRINCIPAL_TYPE = 'tenantry-principal+jwt';
const ISSUER = 'tenantry';
const ALGORITHM = 'HS256';
const KEY_OWNER = 'tenantry';
const KEY_FIELD = 'principal-key';
/** Arbitrary but fixed advisory-lock key serialising the creation of the principal key. */
const KEY_LOCK = 7_303_446_111;
/** Default lifetime of a principal: one hour. */
export const DEFAULT_PRINCIPAL_TTL_SECONDS = 3600;

/** Who a sealed principal speaks for (seed 004's CLIENT-PRINCIPAL). */
export interface Principal {
  /** The user's name (claim `sub`). */
  readonly user: string;
  /** The display name of the user's domain (`''`: the blank domain). */
  readonly domain: string;
  /** The tenant the user acts for. */
  readonly tenant: { readonly id: number; readonly name: string };
  readonly permission: Permission;
  readonly issuedAt: Date;
  readonly expiresAt: Date;
  /** A unique id of this principal (claim `jti`). */
  readonly id: string;
}

/** What {@link PrincipalSealer.seal} signs; times default to now and now + 1 h. */
export interface PrincipalInput {
  readonly user: string;
  readonly domain: string;
  readonly tenant: { readonly id: number; readonly name: string };
  readonly permission: Permission;
  readonly issuedAt?: Date;
  readonly expiresAt?: Date;
}

function seconds(date: Date): number {
  return Math.floor(date.getTime() / 1000);
}

function invalid(problem: string, cause?: unknown): TenantryError {
  return new TenantryError('TOKEN_INVALID', { problem }, cause === undefined ? undefined : { cause });
}

function toPrincipal(payload: JWTPayload): Principal {
  const { sub, domain, tenant, permission, iat, exp, jti } = payload;
  const t = tenant as { id?: unknown; name?: unknown } | null | undefined;
  if (
    typeof sub !== 'string' ||
    typeof domain !== 'string' ||
    typeof t !== 'object' ||
    t === null ||
    !Number.isSafeInteger(t.id) ||
    typeof t.name !== 'string' ||
    !PERMISSIONS.includes(permission as Permission) ||
    typeof iat !== 'number' ||
    typeof exp !== 'number' ||
    typeof jti !== 'string'
  ) {
    throw invalid('its claims are not those of a tenantry principal');
  }
  return {
    user: sub,
    domain,
    tenant: { id: t.id as number, name: t.name },
    permission: permission as Permission,
    issuedAt: new Date(iat * 1000),
    expiresAt: new Date(exp * 1000),
    id: jti,
  };
}

/**
 * Seals and opens principals: compact JWS tokens (HS256) under a server key kept sealed in the
 * catalog, so every tenantry instance on the same database with the same master key accepts
 * the others' principals (single sign-on). The key is created on first use.
 */
export class PrincipalSealer {
  readonly #pool: pg.Pool;
  readonly #credentials: CredentialStore;
  readonly #hasMasterKey: boolean;
  #key: Promise<CryptoKey> | undefined;
  /** Principals whose signature already verified (the user is still checked on every use). */
  readonly #verified = new VerifiedTokens();

  constructor(options: { pool: pg.Pool; credentials: CredentialStore; hasMasterKey: boolean }) {
    this.#pool = options.pool;
    this.#credentials = options.credentials;
    this.#hasMasterKey = options.hasMasterKey;
  }

  /** Throws `TENANTRY_ERR_MASTER_KEY_INVALID` unless this instance was given a master key. */
  requireMasterKey(): void {
    if (this.#hasMasterKey) return;
    throw new TenantryError('MASTER_KEY_INVALID', {
      source: 'the configuration',
      problem: 'no master key was given (masterKey / TENANTRY_MASTER_KEY), and principals need one',
    });
  }

  #signingKey(): Promise<CryptoKey> {
    this.requireMasterKey();
    this.#key ??= this.#loadKey().catch((error: unknown) => {
      this.#key = undefined;
      throw error;
    });
    return this.#key;
  }

  async #loadKey(): Promise<CryptoKey> {
    await inTransaction(this.#pool, async (client) => {
      await client.query('SELECT pg_advisory_xact_lock($1)', [KEY_LOCK]);
      const { rowCount } = await client.query(
        'SELECT 1 FROM tenantry.credential WHERE owner = $1 AND field = $2',
        [KEY_OWNER, KEY_FIELD],
      );
      if (!rowCount) {
        await this.#credentials.put(client, KEY_OWNER, KEY_FIELD, randomBytes(32).toString('base64'));
      }
    });
    // Imported once: importing an HMAC key costs more than a verification.
    return webcrypto.subtle.importKey(
      'raw',
      Buffer.from(await this.#credentials.get(KEY_OWNER, KEY_FIELD), 'base64'),
      { name: 'HMAC', hash: 'SHA-256' },
      false,
      ['sign', 'verify'],
    );
  }

  /**
   * Signs `input` into a compact principal string. Use {@link Tenantry.login} to get one for a
   * user; seal directly only for principals you vouch for. Throws `TENANTRY_ERR_MASTER_KEY_INVALID`
   * without a master key and `TENANTRY_ERR_INVALID_ARGUMENT` for a malformed input.
   */
  async seal(input: PrincipalInput): Promise<string> {
    const issuedAt = input.issuedAt ?? new Date();
    const expiresAt = input.expiresAt ?? new Date(issuedAt.getTime() + DEFAULT_PRINCIPAL_TTL_SECONDS * 1000);
    try {
      toPrincipal({
        sub: input.user,
        domain: input.domain,
        tenant: input.tenant,
        permission: input.permission,
        iat: seconds(issuedAt),
        exp: seconds(expiresAt),
        jti: '-',
      });
    } catch {
      throw new TenantryError('INVALID_ARGUMENT', {
        what: 'principal',
        problem: 'it needs user, domain, tenant { id, name }, a permission and valid dates',
      });
    }
    return new SignJWT({
      domain: input.domain,
      tenant: { id: input.tenant.id, name: input.tenant.name },
      permission: input.permission,
    })
      .setProtectedHeader({ alg: ALGORITHM, typ: PRINCIPAL_TYPE })
      .setIssuer(ISSUER)
      .setSubject(input.user)
      .setIssuedAt(seconds(issuedAt))
      .setExpirationTime(seconds(expiresAt))
      .setJti(randomUUID())
      .sign(await this.#signingKey());
  }

  /** Forgets which principals verified (on every catalog change). */
  clearVerified(): void {
    this.#verified.clear();
  }

  /**
   * Verifies a principal string (HS256 only, `typ` and issuer pinned) and answers its claims.
   * Throws `TENANTRY_ERR_TOKEN_EXPIRED` after its expiry and `TENANTRY_ERR_TOKEN_INVALID` for
   * anything altered, signed with another key or algorithm (including `none`), or malformed.
   */
  async open(token: string): Promise<Principal> {
    if (typeof token !== 'string' || token.length === 0 || token.length > 8192) {
      throw invalid('it is not a compact JWS string');
    }
    const known = this.#verified.get(token);
    if (known) return toPrincipal(known);
    const key = await this.#signingKey();
    try {
      const { payload } = await jwtVerify(token, key, {
        algorithms: [ALGORITHM],
        typ: PRINCIPAL_TYPE,
        issuer: ISSUER,
        requiredClaims: ['sub', 'iat', 'exp', 'jti'],
      });
      const principal = toPrincipal(payload);
      this.#verified.set(token, payload);
      return principal;
    } catch (error) {
      if (error instanceof TenantryError) throw error;
      if (error instanceof errors.JWTExpired) {
        const exp = error.payload.exp;
        const expiredAt = typeof exp === 'number' ? new Date(exp * 1000).toISOString() : 'an earlier time';
        throw new TenantryError('TOKEN_EXPIRED', { expiredAt }, { cause: error });
      }
      if (error instanceof errors.JWSSignatureVerificationFailed) {
        throw invalid('its signature does not match (altered, or sealed with another key)', error);
      }
      if (error instanceof errors.JOSEAlgNotAllowed)
        throw invalid(`its algorithm is not ${ALGORITHM}`, error);
      if (error instanceof errors.JWTClaimValidationFailed) {
        throw invalid(`its ${error.claim} claim is not what tenantry seals`, error);
      }
      throw invalid('it is not a well-formed tenantry principal', error);
    }
  }
}
