import type { JWTPayload } from 'jose';
import { LRUCache } from 'lru-cache';

/**
 * Claims of tokens whose signature was already checked, keyed by the exact token string (and
 * the audience it was checked for), until they expire. A service presents the same token on
 * many requests; checking its HMAC once saves most of the cost of a verification. Everything
 * that can change after issue — revocation, the user, the tenant's state — is still checked on
 * every use. Cleared on every catalog change (e.g. a signing key taken off the allowlist).
 */
export class VerifiedTokens {
  readonly #entries: LRUCache<string, JWTPayload>;

  constructor(max = 10_000) {
    this.#entries = new LRUCache<string, JWTPayload>({ max });
  }

  /** The claims of a token checked before, while it has not expired. */
  get(key: string): JWTPayload | undefined {
    const payload = this.#entries.get(key);
    if (payload === undefined) return undefined;
    if (typeof payload.exp !== 'number' || payload.exp * 1000 <= Date.now()) {
      this.#entries.delete(key);
      return undefined;
    }
    return payload;
  }

  /** Remembers the claims of a token whose signature and claims verified. */
  set(key: string, payload: JWTPayload): void {
    this.#entries.set(key, payload);
  }

  /** Forgets every token (their keys may have changed). */
  clear(): void {
    this.#entries.clear();
  }
}
