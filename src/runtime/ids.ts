import { LRUCache } from 'lru-cache';
import type { Tenant } from '../catalog/index.js';
import { getTenant, runInTenantContext } from '../context/index.js';
import { TenantryError } from '../errors.js';
import { runtimeTables, tenantKey, type RuntimeHost } from './host.js';
import type { RuntimeProvisioner } from './provision.js';

/** Options of {@link IdGenerators.next}. */
export interface IdOptions {
  /**
   * Ids reserved from the database at a time (1 … 1,000,000; default 100). Larger blocks mean
   * fewer round trips and larger gaps after a restart (unused ids of a block are never reused).
   */
  readonly blockSize?: number;
}

const ENTITY = /^[A-Za-z][A-Za-z0-9_.:-]{0,62}$/;

/** The ids of one (tenant, entity) handed out from memory: next … end, both included. */
interface Block {
  next: bigint;
  end: bigint;
  refill: Promise<void> | undefined;
}

/**
 * Per-tenant, per-entity hi/lo id generators (seed 003's pooled id generator). A block of ids is
 * reserved from the tenant's counter (`id_counter`, stored with the tenant's data) in a statement
 * of its own, committed before any of its ids is handed out, then given out from memory: two
 * processes never hand out the same id, a restart never reuses one (it leaves a gap), and
 * `tenantry.next_id('entity')` in SQL — a column default, say — draws from the same counter.
 */
export class IdGenerators {
  readonly #host: RuntimeHost;
  readonly #provisioner: RuntimeProvisioner;
  readonly #blocks = new LRUCache<string, Block>({ max: 100_000 });

  constructor(host: RuntimeHost, provisioner: RuntimeProvisioner) {
    this.#host = host;
    this.#provisioner = provisioner;
  }

  /**
   * The next id of `entity` for the tenant in context. Throws `TENANTRY_ERR_NO_TENANT` outside
   * a tenant context and `TENANTRY_ERR_INVALID_ARGUMENT` for a bad entity name or block size.
   */
  async next(entity: string, options: IdOptions = {}): Promise<bigint> {
    const tenant = getTenant();
    if (typeof entity !== 'string' || !ENTITY.test(entity)) {
      throw new TenantryError('INVALID_ARGUMENT', {
        what: 'id entity',
        problem: `${JSON.stringify(entity)} must start with a letter (letters, digits, _ . : -, at most 63)`,
      });
    }
    const size = options.blockSize ?? 100;
    if (!Number.isSafeInteger(size) || size < 1 || size > 1_000_000) {
      throw new TenantryError('INVALID_ARGUMENT', {
        what: 'blockSize',
        problem: 'expected an integer from 1 to 1,000,000',
      });
    }
    const key = `${tenantKey(tenant)}\u0000${entity}`;
    let block = this.#blocks.get(key);
    if (!block) this.#blocks.set(key, (block = { next: 1n, end: 0n, refill: undefined }));
    for (;;) {
      if (block.next <= block.end) return block.next++;
      const current = block;
      current.refill ??= this.#refill(tenant, entity, size, current).finally(
        () => (current.refill = undefined),
      );
      await current.refill;
    }
  }

  /** Reserves the next block: one committed statement, outside any transaction of the caller. */
  async #refill(tenant: Tenant, entity: string, size: number, block: Block): Promise<void> {
    await this.#provisioner.ensure(tenant);
    const db = this.#host.bookkeeping(tenant);
    const { idCounter } = runtimeTables(tenant);
    // A context without the caller's transaction: a rolled-back block would be handed out twice.
    const { rows } = await runInTenantContext({ tenant, db }, () =>
      db.query<{ value: string }>(
        `INSERT INTO ${idCounter} AS c (entity, value) VALUES ($1, $2)
         ON CONFLICT (tenant_id, entity) DO UPDATE SET value = c.value + EXCLUDED.value
         RETURNING value::text`,
        [entity, size],
      ),
    );
    const end = BigInt(rows[0]?.value ?? '0');
    block.next = end - BigInt(size) + 1n;
    block.end = end;
  }

  /** Forgets the blocks of a dropped tenant (their ids are gone with it). */
  forget(tenant: Tenant): void {
    const prefix = `${tenantKey(tenant)}\u0000`;
    for (const key of [...this.#blocks.keys()]) if (key.startsWith(prefix)) this.#blocks.delete(key);
  }
}
