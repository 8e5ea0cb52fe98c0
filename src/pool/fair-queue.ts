/**
 * Waiters grouped by tenant and served round-robin across tenants, so one tenant with 200
 * queued requests cannot starve a hundred tenants with one each.
 */
export class FairQueue<W extends { readonly tenantId: number }> {
  readonly #byTenant = new Map<number, W[]>();
  /** Tenants with waiters, in service order; the tenant served last moves to the back. */
  readonly #ring: number[] = [];
  #size = 0;

  /** Number of queued waiters. */
  get size(): number {
    return this.#size;
  }

  /** Waiters queued for one tenant. */
  countFor(tenantId: number): number {
    return this.#byTenant.get(tenantId)?.length ?? 0;
  }

  /** Queues `waiter` behind its tenant's earlier waiters. */
  push(waiter: W): void {
    let list = this.#byTenant.get(waiter.tenantId);
    if (!list) {
      list = [];
      this.#byTenant.set(waiter.tenantId, list);
      this.#ring.push(waiter.tenantId);
    }
    list.push(waiter);
    this.#size++;
  }

  /** Removes a waiter (timed out or cancelled); false when it was not queued. */
  remove(waiter: W): boolean {
    const list = this.#byTenant.get(waiter.tenantId);
    const index = list?.indexOf(waiter) ?? -1;
    if (!list || index < 0) return false;
    list.splice(index, 1);
    this.#size--;
    if (list.length === 0) this.#dropTenant(waiter.tenantId);
    return true;
  }

  #dropTenant(tenantId: number): void {
    this.#byTenant.delete(tenantId);
    const at = this.#ring.indexOf(tenantId);
    if (at >= 0) this.#ring.splice(at, 1);
  }

  /**
   * Offers the head waiter of each tenant, in round-robin order, to `serve`; the first one it
   * accepts (returns true for) is dequeued and its tenant moves to the back of the ring.
   * Returns the served waiter, or undefined when `serve` accepted none.
   */
  serveNext(serve: (waiter: W) => boolean): W | undefined {
    for (let i = 0; i < this.#ring.length; i++) {
      const tenantId = this.#ring[i] as number;
      const list = this.#byTenant.get(tenantId);
      const head = list?.[0];
      if (!list || !head || !serve(head)) continue;
      list.shift();
      this.#size--;
      this.#ring.splice(i, 1);
      if (list.length === 0) this.#byTenant.delete(tenantId);
      else this.#ring.push(tenantId);
      return head;
    }
    return undefined;
  }

  /** Removes and returns every waiter (for shutdown). */
  drain(): W[] {
    const all = [...this.#byTenant.values()].flat();
    this.#byTenant.clear();
    this.#ring.length = 0;
    this.#size = 0;
    return all;
  }
}
