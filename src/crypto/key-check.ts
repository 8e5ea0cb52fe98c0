import { TenantryError } from '../errors.js';
import type { KeyRing } from './key-ring.js';
import { decryptError, sealedKeyId } from './sealed-value.js';

/** The owner the key check is sealed for. */
export const KEY_CHECK_OWNER = 'tenantry';

/** The field the key check is sealed for. */
export const KEY_CHECK_FIELD = 'key-check';

/** The fixed, known, non-secret plaintext of every key check. */
const KEY_CHECK_PLAINTEXT = 'tenantry key check: this value proves the master key matches';

/**
 * Seals a fixed, known plaintext with the ring's current key (owner `tenantry`, field
 * `key-check`). Store it next to the credentials when the catalog is installed and again after
 * a rotation, so a later start can tell a wrong master key from a damaged credential before it
 * touches any tenant; after a rotation, replace it when `ring.needsRotation(stored)`. Throws
 * nothing for a valid ring.
 */
export function createKeyCheck(ring: KeyRing): string {
  return ring.seal(KEY_CHECK_PLAINTEXT, KEY_CHECK_OWNER, KEY_CHECK_FIELD);
}

/**
 * Verifies at start-up that `ring` can open the key check stored by {@link createKeyCheck}, i.e.
 * that the master key given matches the one the catalog's credentials were encrypted with.
 *
 * Throws `TENANTRY_ERR_MASTER_KEY_MISMATCH` (naming the stored key id and the ring's ids) when
 * the key check names a key that is not in the ring. Throws `TENANTRY_ERR_CREDENTIAL_DECRYPT`
 * when the key check is malformed, or names a key of the ring but fails to authenticate (it
 * was altered) or holds something else: then the key is right and the stored value is damaged.
 */
export function verifyKeyCheck(ring: KeyRing, sealed: string): void {
  const found = sealedKeyId(sealed);
  if (found !== undefined && !ring.has(found)) {
    throw new TenantryError('MASTER_KEY_MISMATCH', { found, ring: ring.toString() });
  }
  const plaintext = ring.open(sealed, KEY_CHECK_OWNER, KEY_CHECK_FIELD);
  if (plaintext !== KEY_CHECK_PLAINTEXT) {
    throw decryptError({ owner: KEY_CHECK_OWNER, field: KEY_CHECK_FIELD }, 'it is not a key check');
  }
}
