import type pg from 'pg';

/**
 * Revoked delegation-token ids in memory, so verifying a token costs no database round trip.
 * The revocation table NOTIFYs the catalog channel; on every catalog change the set is reloaded
 * before its next use, and while the listening connection is down (a notification could be
 * missed) each check goes to the database instead.
 */
export class RevocationCache {
  readonly #pool: pg.Pool;
  readonly #enabled: () => boolean;
  #ids: Promise<Set<string>> | undefined;
  /** More revocations than this are not held in memory (each check then queries). */
  readonly #max: number;

  constructor(pool: pg.Pool, enabled: () => boolean, max = 100_000) {
    this.#pool = pool;
    this.#enabled = enabled;
    this.#max = max;
  }

  /** Forgets the set (called on every catalog change). */
  invalidate(): void {
    this.#ids = undefined;
  }

  /** Whether token `id` has been revoked. */
  async revoked(id: string): Promise<boolean> {
    if (this.#enabled()) {
      const ids = await this.#load();
      if (ids) return ids.has(id);
    }
    const { rowCount } = await this.#pool.query('SELECT 1 FROM tenantry.token_revocation WHERE id = $1', [
      id,
    ]);
    return (rowCount ?? 0) > 0;
  }

  async #load(): Promise<Set<string> | undefined> {
    let ids = this.#ids;
    if (!ids) {
      const loading = this.#pool
        .query<{ id: string }>(
          'SELECT id::text FROM tenantry.token_revocation WHERE expires_at > now() LIMIT $1',
          [this.#max + 1],
        )
        .then(({ rows }) => new Set(rows.map((r) => r.id)));
      ids = loading;
      this.#ids = loading;
      loading.catch(() => {
        if (this.#ids === loading) this.#ids = undefined;
      });
    }
    const set = await ids;
    return set.size > this.#max ? undefined : set;
  }
}
