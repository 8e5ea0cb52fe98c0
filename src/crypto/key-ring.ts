import { createHash, createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import { TenantryError } from '../errors.js';
import {
  decryptError,
  decryptValue,
  encryptValue,
  parseSealed,
  type CredentialSlot,
} from './sealed-value.js';

/** Bytes in a master key (AES-256). */
export const MASTER_KEY_BYTES = 32;

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const ENV_SOURCE = 'TENANTRY_MASTER_KEY';

/**
 * The id of a master key: the first 8 hex characters of SHA-256 over its bytes, so the same key
 * always has the same id and no registry is needed. Ids are not secret; keys are.
 */
export function keyIdOf(key: Uint8Array): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 8);
}

/**
 * A new random master key, base64-encoded — what `openssl rand -base64 32` prints. Use it for a
 * first-start key file or as the NEW key of a rotation.
 */
export function generateMasterKey(): string {
  return randomBytes(MASTER_KEY_BYTES).toString('base64');
}

function invalid(source: string, problem: string): TenantryError {
  return new TenantryError('MASTER_KEY_INVALID', { source, problem });
}

/** Decodes one base64 key, naming it by `label` in errors and never echoing its text. */
function decodeKey(text: string, label: string, source: string): Buffer {
  if (text === '') throw invalid(source, `${label} is empty`);
  if (!BASE64.test(text)) {
    throw invalid(source, `${label} is not base64 (letters, digits, + and /, with = padding)`);
  }
  const bytes = Buffer.from(text, 'base64');
  if (bytes.toString('base64').replace(/=+$/, '') !== text.replace(/=+$/, '')) {
    throw invalid(source, `${label} is not valid base64`);
  }
  if (bytes.length !== MASTER_KEY_BYTES) {
    throw invalid(source, `${label} decodes to ${bytes.length} bytes, not ${MASTER_KEY_BYTES}`);
  }
  return bytes;
}

interface RingKey {
  readonly id: string;
  readonly key: KeyObject;
}

/**
 * The master keys credentials are sealed with: one *current* key that seals and opens, and any
 * number of *old* keys that only open. Rotation: start with `NEW,OLD`, run `tenantry rotate-key`
 * (which {@link KeyRing.reseal}s every value that {@link KeyRing.needsRotation}), then drop OLD.
 * Key bytes are held as Node `KeyObject`s in private fields and are never printed or logged.
 */
export class KeyRing {
  readonly #current: RingKey;
  readonly #keys: ReadonlyMap<string, RingKey>;

  private constructor(keys: readonly Uint8Array[], source: string) {
    const ring = new Map<string, RingKey>();
    const seen = new Map<string, Buffer>();
    for (const bytes of keys) {
      if (bytes.length !== MASTER_KEY_BYTES) {
        throw invalid(source, `a key has ${bytes.length} bytes, not ${MASTER_KEY_BYTES}`);
      }
      const id = keyIdOf(bytes);
      const known = seen.get(id);
      if (known) {
        if (known.equals(bytes)) continue; // the same key listed twice: harmless.
        throw invalid(source, `two different keys share the key id ${id}; generate a new key`);
      }
      seen.set(id, Buffer.from(bytes));
      ring.set(id, { id, key: createSecretKey(bytes) });
    }
    for (const copy of seen.values()) copy.fill(0);
    const current = ring.values().next();
    if (current.done) throw invalid(source, 'no key was given');
    this.#current = current.value;
    this.#keys = ring;
  }

  /**
   * Parses a master key as given in `TENANTRY_MASTER_KEY`: base64 of exactly 32 bytes, or a
   * comma-separated `NEW,OLD1,OLD2` list whose first key is current and the rest decrypt-only.
   * The caller reads the environment and passes the value; `source` names where it came from.
   * Throws `TENANTRY_ERR_MASTER_KEY_INVALID` (naming the position, never the key) otherwise.
   */
  static fromEnv(value: string, source: string = ENV_SOURCE): KeyRing {
    if (typeof value !== 'string' || value.trim() === '') throw invalid(source, 'the value is empty');
    const texts = value.split(',').map((text) => text.trim());
    const keys = texts.map((text, index) =>
      decodeKey(text, texts.length === 1 ? 'the key' : `key ${index + 1} of ${texts.length}`, source),
    );
    try {
      return new KeyRing(keys, source);
    } finally {
      for (const key of keys) key.fill(0);
    }
  }

  /**
   * Builds a ring from raw 32-byte keys: `current` seals, `old` keys only open. Use it when the
   * keys come from a secret store as bytes. Throws `TENANTRY_ERR_MASTER_KEY_INVALID` for a key
   * of the wrong length.
   */
  static fromKeys(current: Uint8Array, old: readonly Uint8Array[] = []): KeyRing {
    return new KeyRing([current, ...old], 'KeyRing.fromKeys');
  }

  /** The id of the current key, the one {@link KeyRing.seal} uses. */
  get currentKeyId(): string {
    return this.#current.id;
  }

  /** Ids of every key in the ring, the current one first. */
  get keyIds(): readonly string[] {
    return [...this.#keys.keys()];
  }

  /** Whether the ring holds the key with id `keyId` (current or old). */
  has(keyId: string): boolean {
    return this.#keys.has(keyId);
  }

  /**
   * Encrypts a credential with the current key, bound to `owner` (e.g. `tenant:5`) and `field`
   * (e.g. `password`); see {@link SEALED_VALUE_VERSION} for the format. Use it before storing
   * any secret in the catalog. Throws `TENANTRY_ERR_INVALID_ARGUMENT` for a bad owner or field.
   */
  seal(plaintext: string, owner: string, field: string): string {
    return encryptValue(this.#current.key, this.#current.id, plaintext, { owner, field });
  }

  /**
   * Decrypts a value made by {@link KeyRing.seal} for the same `owner` and `field`, with
   * whichever key of the ring it names. Throws `TENANTRY_ERR_CREDENTIAL_DECRYPT` when the value
   * is malformed or altered, was sealed for another owner or field, or names a key not in the ring.
   */
  open(sealed: string, owner: string, field: string): string {
    const slot: CredentialSlot = { owner, field };
    const parts = parseSealed(sealed, slot);
    const entry = this.#keys.get(parts.keyId);
    if (!entry) {
      throw decryptError(
        slot,
        `it was sealed with key ${parts.keyId}, which is not in the key ring ${this.toString()}`,
      );
    }
    return decryptValue(entry.key, parts, slot);
  }

  /**
   * Whether `sealed` was made with a key other than the current one, so a rotation should
   * {@link KeyRing.reseal} it. Throws `TENANTRY_ERR_CREDENTIAL_DECRYPT` for a malformed value.
   */
  needsRotation(sealed: string): boolean {
    return parseSealed(sealed, { owner: 'an unknown owner', field: 'unnamed' }).keyId !== this.#current.id;
  }

  /**
   * Opens `sealed` with whichever key it names and seals the plaintext again with the current
   * key (and a fresh IV). Use it in rotation for each value that {@link KeyRing.needsRotation}.
   * Throws like {@link KeyRing.open}.
   */
  reseal(sealed: string, owner: string, field: string): string {
    return this.seal(this.open(sealed, owner, field), owner, field);
  }

  /** The key ids, never the keys: `[1a2b3c4d (current), 5e6f7a8b]`. */
  toString(): string {
    return `[${this.keyIds.map((id) => (id === this.#current.id ? `${id} (current)` : id)).join(', ')}]`;
  }

  /** Serialises as its key ids only, so a ring logged by accident leaks nothing. */
  toJSON(): { currentKeyId: string; keyIds: readonly string[] } {
    return { currentKeyId: this.currentKeyId, keyIds: this.keyIds };
  }
}
