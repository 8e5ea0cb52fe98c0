import type pg from 'pg';
import {
  createKeyCheck,
  KEY_CHECK_FIELD,
  KEY_CHECK_OWNER,
  verifyKeyCheck,
  type KeyRing,
} from '../crypto/index.js';
import { TenantryError } from '../errors.js';

/** Anything that runs SQL text with values: a client in a transaction, a pool, the operator handle. */
interface Queryable {
  query(text: string, values?: unknown[]): Promise<unknown>;
}

/** The `reason` of the `TENANTRY_ERR_CREDENTIAL_DECRYPT` thrown for a credential that is not stored. */
export const NO_SUCH_CREDENTIAL = 'no such credential is stored';

/**
 * Credentials sealed with the master key in `tenantry.credential`. Values are decrypted only
 * when asked for (when a pool is created) and are never logged.
 */
export class CredentialStore {
  readonly #pool: pg.Pool;
  readonly #ring: KeyRing | undefined;

  constructor(pool: pg.Pool, ring: KeyRing | undefined) {
    this.#pool = pool;
    this.#ring = ring;
  }

  #keys(): KeyRing {
    if (!this.#ring) {
      throw new TenantryError('MASTER_KEY_INVALID', {
        source: 'the configuration',
        problem: 'no master key was given (masterKey / TENANTRY_MASTER_KEY), and this operation needs one',
      });
    }
    return this.#ring;
  }

  /** Seals `value` and stores it for (owner, field), replacing any previous value. */
  async put(db: Queryable, owner: string, field: string, value: string): Promise<void> {
    const sealed = this.#keys().seal(value, owner, field);
    await db.query(
      `INSERT INTO tenantry.credential (owner, field, sealed) VALUES ($1, $2, $3)
       ON CONFLICT (owner, field) DO UPDATE SET sealed = EXCLUDED.sealed, updated_at = now()`,
      [owner, field, sealed],
    );
  }

  /** Reads and opens (owner, field); throws `TENANTRY_ERR_CREDENTIAL_DECRYPT` for that owner only. */
  async get(owner: string, field: string): Promise<string> {
    const { rows } = await this.#pool.query<{ sealed: string }>(
      'SELECT sealed FROM tenantry.credential WHERE owner = $1 AND field = $2',
      [owner, field],
    );
    const sealed = rows[0]?.sealed;
    if (sealed === undefined) {
      throw new TenantryError('CREDENTIAL_DECRYPT', { owner, field, reason: NO_SUCH_CREDENTIAL });
    }
    return this.#keys().open(sealed, owner, field);
  }

  /** Removes every credential of `owner`. */
  async remove(db: Queryable, owner: string): Promise<void> {
    await db.query('DELETE FROM tenantry.credential WHERE owner = $1', [owner]);
  }

  /**
   * Checks at start-up that the configured key opens the catalog's credentials, storing a key
   * check on first use. Throws `TENANTRY_ERR_MASTER_KEY_MISMATCH` for a key that does not.
   */
  async checkKey(): Promise<void> {
    if (!this.#ring) return;
    const { rows } = await this.#pool.query<{ sealed: string }>(
      'SELECT sealed FROM tenantry.credential WHERE owner = $1 AND field = $2',
      [KEY_CHECK_OWNER, KEY_CHECK_FIELD],
    );
    const stored = rows[0]?.sealed;
    if (stored !== undefined) {
      verifyKeyCheck(this.#ring, stored);
      return;
    }
    const { rowCount } = await this.#pool.query(
      'INSERT INTO tenantry.credential (owner, field, sealed) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING',
      [KEY_CHECK_OWNER, KEY_CHECK_FIELD, createKeyCheck(this.#ring)],
    );
    // Another process stored its key check first (two first starts at once): ours must match it.
    if (rowCount === 0) await this.checkKey();
  }

  /**
   * Re-encrypts every credential sealed with an old key under the current key, in one
   * transaction; returns how many were resealed. Old keys stay needed until this has run.
   */
  async rotate(): Promise<number> {
    const ring = this.#keys();
    const client = await this.#pool.connect();
    try {
      await client.query('BEGIN');
      const { rows } = await client.query<{ owner: string; field: string; sealed: string }>(
        'SELECT owner, field, sealed FROM tenantry.credential FOR UPDATE',
      );
      let count = 0;
      for (const row of rows) {
        if (!ring.needsRotation(row.sealed)) continue;
        await client.query(
          // updated_at stays: the value is the same (the newest delegation key is found by it).
          'UPDATE tenantry.credential SET sealed = $3 WHERE owner = $1 AND field = $2',
          [row.owner, row.field, ring.reseal(row.sealed, row.owner, row.field)],
        );
        count++;
      }
      await client.query('COMMIT');
      return count;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }
}
