import { createCipheriv, createDecipheriv, randomBytes, type KeyObject } from 'node:crypto';
import { TenantryError } from '../errors.js';

/**
 * The sealed-value format, version 1: AES-256-GCM with a random 96-bit IV per value, a 128-bit
 * authentication tag, and associated data binding the value to its owner and field.
 *
 * A sealed value is one self-describing compact string of five dot-separated parts:
 *
 * ```text
 * v1.<keyId>.<iv>.<tag>.<ciphertext>
 * ```
 *
 * - `v1` — the format version;
 * - `keyId` — 8 lowercase hex characters, the first 4 bytes of SHA-256 over the 32 key bytes;
 * - `iv` — 12 random bytes, base64url without padding (16 characters);
 * - `tag` — the 16-byte GCM tag, base64url without padding (22 characters);
 * - `ciphertext` — the UTF-8 plaintext encrypted, base64url without padding (empty for `''`).
 *
 * The associated data is the UTF-8 string `tenantry:v1:${owner}:${field}`, e.g.
 * `tenantry:v1:tenant:5:password`: a value copied to another owner or field fails to open.
 * The format and algorithm are fixed per version; a future `v2` will be added beside `v1`.
 */
export const SEALED_VALUE_VERSION = 'v1';

const ALGORITHM = 'aes-256-gcm';
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_ID = /^[0-9a-f]{8}$/;
const BASE64URL = /^[A-Za-z0-9_-]*$/;
const OWNER = /^\S+$/u;
const FIELD = /^[A-Za-z0-9_-]+$/;
const FORMAT = `${SEALED_VALUE_VERSION}.<keyId>.<iv>.<tag>.<ciphertext>`;

/** The decoded parts of a sealed value. */
export interface SealedParts {
  readonly keyId: string;
  readonly iv: Buffer;
  readonly tag: Buffer;
  readonly ciphertext: Buffer;
}

/** The owner and field a credential belongs to; both are bound into the associated data. */
export interface CredentialSlot {
  readonly owner: string;
  readonly field: string;
}

/**
 * Builds the associated data for `slot`. Throws `TENANTRY_ERR_INVALID_ARGUMENT` when the owner
 * is empty or holds whitespace, or the field is not a plain name: the field, being last and
 * free of `:`, keeps `tenantry:v1:${owner}:${field}` unambiguous.
 */
export function associatedData({ owner, field }: CredentialSlot): Buffer {
  if (typeof owner !== 'string' || !OWNER.test(owner)) {
    throw new TenantryError('INVALID_ARGUMENT', {
      what: 'credential owner',
      problem: 'it must be a non-empty string without whitespace, like tenant:5 or server:main',
    });
  }
  if (typeof field !== 'string' || !FIELD.test(field)) {
    throw new TenantryError('INVALID_ARGUMENT', {
      what: 'credential field',
      problem: 'it must be a non-empty name of letters, digits, _ and -, like password',
    });
  }
  return Buffer.from(`tenantry:${SEALED_VALUE_VERSION}:${owner}:${field}`, 'utf8');
}

/**
 * The `TENANTRY_ERR_CREDENTIAL_DECRYPT` error for `slot`. `reason` must never hold the
 * plaintext, the key or parts of the sealed value other than its key id.
 */
export function decryptError(slot: CredentialSlot, reason: string, cause?: unknown): TenantryError {
  return new TenantryError(
    'CREDENTIAL_DECRYPT',
    { owner: slot.owner, field: slot.field, reason },
    cause === undefined ? undefined : { cause },
  );
}

function decodePart(text: string, bytes: number | undefined): Buffer | undefined {
  if (!BASE64URL.test(text)) return undefined;
  const decoded = Buffer.from(text, 'base64url');
  // Reject non-canonical text (e.g. altered padding bits) so every change to a part is an error.
  if (decoded.toString('base64url') !== text) return undefined;
  if (bytes !== undefined && decoded.length !== bytes) return undefined;
  return decoded;
}

/**
 * Splits and decodes a sealed value without decrypting it. Throws
 * `TENANTRY_ERR_CREDENTIAL_DECRYPT` for `slot` when the string is not a well-formed `v1` value.
 */
export function parseSealed(sealed: string, slot: CredentialSlot): SealedParts {
  const parts = typeof sealed === 'string' ? sealed.split('.') : [];
  if (parts.length !== 5) return malformed(slot, `it is not a sealed value (expected ${FORMAT})`);
  const [version = '', keyId = '', ivText = '', tagText = '', ciphertextText = ''] = parts;
  if (version !== SEALED_VALUE_VERSION) {
    return malformed(slot, `its format version is not ${SEALED_VALUE_VERSION} (expected ${FORMAT})`);
  }
  if (!KEY_ID.test(keyId)) return malformed(slot, 'its key id is not 8 lowercase hex characters');
  const iv = decodePart(ivText, IV_BYTES);
  if (!iv) return malformed(slot, `its IV is not ${IV_BYTES} bytes of base64url`);
  const tag = decodePart(tagText, TAG_BYTES);
  if (!tag) return malformed(slot, `its tag is not ${TAG_BYTES} bytes of base64url`);
  const ciphertext = decodePart(ciphertextText, undefined);
  if (!ciphertext) return malformed(slot, 'its ciphertext is not base64url');
  return { keyId, iv, tag, ciphertext };
}

function malformed(slot: CredentialSlot, reason: string): never {
  throw decryptError(slot, reason);
}

/**
 * The key id a sealed value names, or `undefined` when `sealed` is not a well-formed `v1`
 * value. Use it to report which key a stored value needs; it never throws.
 */
export function sealedKeyId(sealed: string): string | undefined {
  try {
    return parseSealed(sealed, { owner: '-', field: '-' }).keyId;
  } catch {
    return undefined;
  }
}

/**
 * Encrypts `plaintext` for `slot` with `key` (whose id is `keyId`) and returns the compact
 * sealed string. Throws `TENANTRY_ERR_INVALID_ARGUMENT` for a bad owner or field.
 */
export function encryptValue(key: KeyObject, keyId: string, plaintext: string, slot: CredentialSlot): string {
  if (typeof plaintext !== 'string') {
    throw new TenantryError('INVALID_ARGUMENT', { what: 'credential', problem: 'it must be a string' });
  }
  const aad = associatedData(slot);
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv(ALGORITHM, key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad);
  const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  const tag = cipher.getAuthTag();
  return [SEALED_VALUE_VERSION, keyId, iv, tag, ciphertext]
    .map((part) => (typeof part === 'string' ? part : part.toString('base64url')))
    .join('.');
}

/**
 * Decrypts parsed `parts` for `slot` with `key`. Throws `TENANTRY_ERR_CREDENTIAL_DECRYPT` when
 * authentication fails (altered value, another owner or field, or another key).
 */
export function decryptValue(key: KeyObject, parts: SealedParts, slot: CredentialSlot): string {
  const aad = associatedData(slot);
  try {
    const decipher = createDecipheriv(ALGORITHM, key, parts.iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(aad);
    decipher.setAuthTag(parts.tag);
    return Buffer.concat([decipher.update(parts.ciphertext), decipher.final()]).toString('utf8');
  } catch (cause) {
    throw decryptError(
      slot,
      `authentication failed with key ${parts.keyId} (the value was altered, or was sealed for another owner or field)`,
      cause,
    );
  }
}
