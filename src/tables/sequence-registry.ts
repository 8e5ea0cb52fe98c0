import { inTransaction } from '../catalog/index.js';
import pg from 'pg';
import { TenantryError, fromDatabaseError } from '../errors.js';
import type { DatabaseProvisioner } from '../isolation/index.js';

/** A sequence known to tenantry (seed 004's multi-tenant and shared sequences). */
export interface SequenceInfo {
  readonly name: string;
  /** `multi_tenant`: counts per tenant from `start`; `shared`: numbers across tenants. */
  readonly kind: 'multi_tenant' | 'shared';
  readonly start: string;
  readonly increment: string;
}

/** Options of {@link SequenceRegistry.create}. */
export interface CreateSequenceOptions {
  /** Number across tenants instead of per tenant (default false). */
  readonly shared?: boolean;
  /** First value (default 1). */
  readonly start?: number;
  /** Step (default 1, not 0). */
  readonly increment?: number;
}

const NAME = /^[a-z][a-z0-9_]{0,62}$/;

/**
 * Multi-tenant and shared sequences. Use them from SQL with `tenantry.next('name')` — also as a
 * column DEFAULT — or from TS with `db.query("SELECT tenantry.next('name')")`.
 */
export class SequenceRegistry {
  readonly #pool: pg.Pool;
  readonly #databases: DatabaseProvisioner;
  readonly #owner: string;

  /** @param owner the catalog's owner role, which owns shared sequences (tenantry.next() runs as it). */
  constructor(pool: pg.Pool, databases: DatabaseProvisioner, owner: string) {
    this.#pool = pool;
    this.#databases = databases;
    this.#owner = owner;
  }

  /**
   * Creates a sequence. Throws `TENANTRY_ERR_INVALID_ARGUMENT` for a bad name, start or
   * increment, or a name already taken.
   */
  async create(name: string, options: CreateSequenceOptions = {}): Promise<SequenceInfo> {
    if (typeof name !== 'string' || !NAME.test(name)) {
      throw new TenantryError('INVALID_ARGUMENT', {
        what: 'sequence name',
        problem: `${JSON.stringify(name)} must be lower-case letters, digits or _, starting with a letter`,
      });
    }
    const start = options.start ?? 1;
    const increment = options.increment ?? 1;
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(increment) || increment === 0) {
      throw new TenantryError('INVALID_ARGUMENT', {
        what: 'sequence',
        problem: 'start and increment must be integers, increment not 0',
      });
    }
    const kind = options.shared === true ? 'shared' : 'multi_tenant';
    try {
      await inTransaction(this.#pool, async (client) => {
        await client.query(
          'INSERT INTO tenantry.sequence (name, kind, start, increment) VALUES ($1, $2, $3, $4)',
          [name, kind, start, increment],
        );
        if (kind === 'shared') {
          const seq = `tenantry.${pg.escapeIdentifier(`seq_${name}`)}`;
          await client.query(`CREATE SEQUENCE ${seq} START ${start} INCREMENT ${increment}`);
          await client.query(`ALTER SEQUENCE ${seq} OWNER TO ${pg.escapeIdentifier(this.#owner)}`);
        }
      });
    } catch (error) {
      if (error instanceof pg.DatabaseError && error.code === '23505') {
        throw new TenantryError('INVALID_ARGUMENT', {
          what: 'sequence name',
          problem: `${name} already exists`,
        });
      }
      throw fromDatabaseError(error);
    }
    await this.#databases.syncAll();
    return { name, kind, start: String(start), increment: String(increment) };
  }

  /** Every sequence. */
  async list(): Promise<SequenceInfo[]> {
    const { rows } = await this.#pool.query<SequenceInfo>(
      'SELECT name, kind, start::text AS start, increment::text AS increment FROM tenantry.sequence ORDER BY name',
    );
    return rows;
  }

  /** Drops a sequence and every tenant's value of it. Throws `TENANTRY_ERR_SEQUENCE_NOT_FOUND`. */
  async drop(name: string): Promise<void> {
    await inTransaction(this.#pool, async (client) => {
      const { rows } = await client.query<{ kind: string }>(
        'DELETE FROM tenantry.sequence WHERE name = $1 RETURNING kind',
        [name],
      );
      if (!rows[0]) throw new TenantryError('SEQUENCE_NOT_FOUND', { sequence: name });
      if (rows[0].kind === 'shared') {
        await client.query(`DROP SEQUENCE IF EXISTS tenantry.${pg.escapeIdentifier(`seq_${name}`)}`);
      }
    });
  }
}
