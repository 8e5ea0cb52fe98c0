import { randomBytes, randomUUID, webcrypto } from 'node:crypto';
import { SignJWT, decodeProtectedHeader, errors, jwtVerify, type JWTPayload } from 'jose';
import type pg from 'pg';
import { NO_SUCH_CREDENTIAL, type CredentialStore } from '../catalog/index.js';
import { TenantryError, isTenantryError } from '../errors.js';
import type { Permission } from './names.js';
import { parseUserRef } from './names.js';
import { RevocationCache } from './revocations.js';
import { VerifiedTokens } from './verified-tokens.js';
import type { UserStore } from './user-store.js';

/** An imported HMAC key (WebCrypto). */
type CryptoKey = webcrypto.CryptoKey;

/** The JWS `typ` of a delegation token. */
export const DELEGATION_TYPE = 'tenantry-delegation+jwt';
const ALGORITHM = 'HS256';
const ISSUER = 'tenantry';
const KEY_OWNER = 'tenantry:delegation';
/** Default and longest lifetimes of a delegation token. */
const DEFAULT_TTL = 3600;
/** Token headers whose type {@link DelegationTokens.looksLike} remembers, and their longest length. */
const MAX_REMEMBERED_HEADERS = 256;
const MAX_REMEMBERED_HEADER = 512;
const headerTypes = new Map<string, boolean>();
const MAX_TTL = 24 * 3600;
/** A token id as issued (`randomUUID()`), in either case. */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** What {@link DelegationTokens.issue} needs. */
export interface DelegationInput {
  /** The end user, `user@domain`. */
  readonly user: string;
  /** The trusted service identity acting for the user (claim `act.sub`). */
  readonly service: string;
  /** Lifetime in seconds (default 3600, at most 86,400). */
  readonly ttlSeconds?: number;
  /** Audience (default `tenantry`); verification requires the same. */
  readonly audience?: string;
}

/** A verified delegation: who acts for whom, as which tenant. */
export interface Delegation {
  readonly id: string;
  readonly user: string;
  readonly domain: string;
  readonly service: string;
  readonly tenant: { readonly id: number; readonly name: string };
  readonly permission: Permission;
  readonly expiresAt: Date;
}

function fail(code: 'TOKEN_INVALID', problem: string, cause?: unknown): TenantryError {
  return new TenantryError(code, { problem }, cause === undefined ? undefined : { cause });
}

/**
 * Delegation tokens (seed 000): a trusted service obtains a short-lived token for an end user;
 * tenantry verifies it on every use and maps it to that user's identity. HS256 is pinned, key
 * ids come from the allowlist of keys stored (sealed) in the catalog, keys rotate with
 * {@link rotateKey} (older keys keep verifying until retired), and revocation by id is checked
 * in the catalog on every verification.
 */
export class DelegationTokens {
  readonly #pool: pg.Pool;
  readonly #credentials: CredentialStore;
  readonly #users: UserStore;
  /** Verification keys by id, imported once (importing an HMAC key costs more than verifying). */
  readonly #keys = new Map<string, Uint8Array | CryptoKey>();
  readonly #revocations: RevocationCache;
  readonly #verified = new VerifiedTokens();

  constructor(options: {
    pool: pg.Pool;
    credentials: CredentialStore;
    users: UserStore;
    /** Revoked ids in memory (else every verification queries the catalog). */
    revocations?: RevocationCache;
  }) {
    this.#pool = options.pool;
    this.#credentials = options.credentials;
    this.#users = options.users;
    this.#revocations = options.revocations ?? new RevocationCache(options.pool, () => false);
  }

  /** The newest key id, creating the first key when there is none. */
  async #currentKid(): Promise<string> {
    const { rows } = await this.#pool.query<{ field: string }>(
      'SELECT field FROM tenantry.credential WHERE owner = $1 ORDER BY updated_at DESC, field LIMIT 1',
      [KEY_OWNER],
    );
    return rows[0]?.field ?? this.rotateKey();
  }

  async #key(kid: string): Promise<Uint8Array | CryptoKey> {
    const cached = this.#keys.get(kid);
    if (cached) return cached;
    if (!/^[0-9a-f]{16}$/.test(kid)) throw fail('TOKEN_INVALID', 'its key id is not one tenantry issued');
    let sealed: string;
    try {
      sealed = await this.#credentials.get(KEY_OWNER, kid);
    } catch (error) {
      // Only a key that is not stored is the token's fault; a catalog or decryption failure is ours.
      if (!isTenantryError(error, 'CREDENTIAL_DECRYPT') || error.details.reason !== NO_SUCH_CREDENTIAL)
        throw error;
      throw fail('TOKEN_INVALID', `key ${kid} is not on the allowlist`);
    }
    const key = await webcrypto.subtle.importKey(
      'raw',
      Buffer.from(sealed, 'base64'),
      { name: 'HMAC', hash: 'SHA-256' },
      false,
      ['sign', 'verify'],
    );
    this.#keys.set(kid, key);
    return key;
  }

  /** Adds a new signing key (new tokens use it; tokens signed with older keys still verify). */
  async rotateKey(): Promise<string> {
    const kid = randomBytes(8).toString('hex');
    await this.#credentials.put(this.#pool, KEY_OWNER, kid, randomBytes(32).toString('base64'));
    return kid;
  }

  /** Issues a token for `input.user`. Throws `TENANTRY_ERR_USER_NOT_FOUND`, `TENANTRY_ERR_INVALID_ARGUMENT`. */
  async issue(input: DelegationInput): Promise<{ token: string; id: string; expiresAt: Date }> {
    const ttl = input.ttlSeconds ?? DEFAULT_TTL;
    if (!Number.isInteger(ttl) || ttl < 1 || ttl > MAX_TTL) {
      throw new TenantryError('INVALID_ARGUMENT', {
        what: 'ttl',
        problem: `expected 1 to ${MAX_TTL} seconds`,
      });
    }
    if (typeof input.service !== 'string' || !/^[\w.@:-]{1,200}$/.test(input.service)) {
      throw new TenantryError('INVALID_ARGUMENT', {
        what: 'service',
        problem: 'expected a service identity name',
      });
    }
    const user = await this.#users.show(input.user);
    const kid = await this.#currentKid();
    const id = randomUUID();
    const now = Math.floor(Date.now() / 1000);
    // `tid` binds the token to the user's tenant: a domain name reused by another tenant later
    // must not carry it over.
    const token = await new SignJWT({ act: { sub: input.service }, domain: user.domain, tid: user.tenant.id })
      .setProtectedHeader({ alg: ALGORITHM, typ: DELEGATION_TYPE, kid })
      .setIssuer(ISSUER)
      .setSubject(user.name)
      .setAudience(input.audience ?? 'tenantry')
      .setIssuedAt(now)
      .setExpirationTime(now + ttl)
      .setJti(id)
      .sign(await this.#key(kid));
    return { token, id, expiresAt: new Date((now + ttl) * 1000) };
  }

  /** Whether `token` claims to be a delegation token (by its header; nothing is verified). */
  static looksLike(token: string): boolean {
    // The header is the part before the first dot; a service sends the same few headers (one per
    // signing key) on every request, so their answers are remembered (a bounded map).
    const dot = token.indexOf('.');
    const segment = dot < 0 ? token : token.slice(0, dot);
    const known = headerTypes.get(segment);
    if (known !== undefined) return known;
    let answer: boolean;
    try {
      answer = decodeProtectedHeader(token).typ === DELEGATION_TYPE;
    } catch {
      answer = false;
    }
    if (segment.length <= MAX_REMEMBERED_HEADER) {
      if (headerTypes.size >= MAX_REMEMBERED_HEADERS) headerTypes.clear();
      headerTypes.set(segment, answer);
    }
    return answer;
  }

  /**
   * Verifies a token and maps it to its user. Throws `TENANTRY_ERR_TOKEN_EXPIRED`,
   * `TENANTRY_ERR_TOKEN_AUDIENCE`, `TENANTRY_ERR_TOKEN_REVOKED`, `TENANTRY_ERR_TOKEN_INVALID`
   * (altered, wrong type or algorithm incl. `none`, unknown key id, no tenant claim) and
   * `TENANTRY_ERR_AUTH` when the user no longer exists or now belongs to another tenant.
   */
  async verify(token: string, options: { audience?: string } = {}): Promise<Delegation> {
    if (typeof token !== 'string' || token.length === 0 || token.length > 8192) {
      throw fail('TOKEN_INVALID', 'it is not a compact JWS string');
    }
    const cacheKey = `${options.audience ?? 'tenantry'}\0${token}`;
    let payload = this.#verified.get(cacheKey);
    if (payload === undefined) {
      payload = await this.#check(token, options.audience);
      this.#verified.set(cacheKey, payload);
    }
    const id = String(payload.jti);
    if (await this.#revocations.revoked(id)) throw new TenantryError('TOKEN_REVOKED', { id });
    const domain = typeof payload.domain === 'string' ? payload.domain : '';
    const record = await this.#users.find(
      parseUserRef(domain ? `${String(payload.sub)}@${domain}` : String(payload.sub)),
    );
    if (!record || record.tenant.id !== payload.tid) throw new TenantryError('AUTH');
    const act = payload.act as { sub?: unknown } | undefined;
    return {
      id,
      user: record.name,
      domain: record.domain,
      service: typeof act?.sub === 'string' ? act.sub : '',
      tenant: record.tenant,
      permission: record.permission,
      expiresAt: new Date(Number(payload.exp) * 1000),
    };
  }

  /** Checks a token's header, signature and claims (no revocation, no user). */
  async #check(token: string, audience: string | undefined): Promise<JWTPayload> {
    let header;
    try {
      header = decodeProtectedHeader(token);
    } catch (error) {
      throw fail('TOKEN_INVALID', 'it is not a well-formed token', error);
    }
    if (header.alg !== ALGORITHM) throw fail('TOKEN_INVALID', `its algorithm is not ${ALGORITHM}`);
    if (header.typ !== DELEGATION_TYPE) throw fail('TOKEN_INVALID', 'it is not a delegation token');
    const key = await this.#key(String(header.kid ?? ''));
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, key, {
        algorithms: [ALGORITHM],
        typ: DELEGATION_TYPE,
        issuer: ISSUER,
        audience: audience ?? 'tenantry',
        requiredClaims: ['sub', 'aud', 'exp', 'jti', 'act', 'tid'],
      }));
    } catch (error) {
      if (error instanceof errors.JWTExpired) {
        throw new TenantryError('TOKEN_EXPIRED', { expiredAt: 'its expiry' }, { cause: error });
      }
      if (error instanceof errors.JWTClaimValidationFailed && error.claim === 'aud') {
        throw new TenantryError('TOKEN_AUDIENCE', { audience: audience ?? 'tenantry' }, { cause: error });
      }
      throw fail('TOKEN_INVALID', 'its signature or claims do not verify', error);
    }
    return payload;
  }

  /** Whether the token with this id has been revoked (in memory while the catalog listener is up). */
  isRevoked(id: string): Promise<boolean> {
    return this.#revocations.revoked(id);
  }

  /** Forgets which tokens verified and the keys imported (on every catalog change: a key may have been retired). */
  clearVerified(): void {
    this.#verified.clear();
    this.#keys.clear();
  }

  /** Revokes a token by id: every later verification, on every process, refuses it. */
  async revoke(id: string, expiresAt: Date = new Date(Date.now() + MAX_TTL * 1000)): Promise<void> {
    if (typeof id !== 'string' || !UUID.test(id)) {
      throw new TenantryError('INVALID_ARGUMENT', {
        what: 'token id',
        problem: 'expected the token id (a uuid)',
      });
    }
    // Token ids are issued in lower case and compared exactly: store what verification looks for.
    await this.#pool.query(
      `INSERT INTO tenantry.token_revocation (id, expires_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING`,
      [id.toLowerCase(), expiresAt],
    );
    await this.#pool.query('DELETE FROM tenantry.token_revocation WHERE expires_at < now()');
    // Other processes hear of it by NOTIFY; this one must not wait for that.
    this.#revocations.invalidate();
  }
}
