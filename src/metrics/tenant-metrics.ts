import client from 'prom-client';

/** Latency buckets in seconds (1 ms … 10 s). */
const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** What one tenant has done, cumulatively. */
interface TenantCounts {
  queries: number;
  errors: number;
  sum: number;
  /** Observations at or below each bucket (not cumulative across buckets). */
  buckets: number[];
}

function empty(): TenantCounts {
  return { queries: 0, errors: 0, sum: 0, buckets: BUCKETS.map(() => 0) };
}

function add(into: TenantCounts, from: TenantCounts): void {
  into.queries += from.queries;
  into.errors += from.errors;
  into.sum += from.sum;
  from.buckets.forEach((n, i) => (into.buckets[i] = (into.buckets[i] ?? 0) + n));
}

/**
 * The label of the tenants beyond the top N, summed. Tenant names start with a letter, so no
 * tenant can be confused with it (nor have its counters summed into).
 */
export const OTHER_TENANTS = '_other';

/**
 * Per-tenant query counts, errors and latencies, exported with a `tenant` label of bounded
 * cardinality: the `topN` most active tenants by name, every other tenant summed as
 * {@link OTHER_TENANTS}.
 */
export class TenantMetrics {
  readonly #tenants = new Map<string, TenantCounts>();

  /** Records one query (or gateway transaction) of `tenant` taking `seconds`. */
  observe(tenant: string, seconds: number, ok: boolean): void {
    let counts = this.#tenants.get(tenant);
    if (!counts) this.#tenants.set(tenant, (counts = empty()));
    counts.queries++;
    if (!ok) counts.errors++;
    counts.sum += seconds;
    const bucket = BUCKETS.findIndex((le) => seconds <= le);
    if (bucket >= 0) counts.buckets[bucket] = (counts.buckets[bucket] ?? 0) + 1;
  }

  /** Forgets a tenant's figures (it was dropped: its name may be given to a new tenant). */
  forget(tenant: string): void {
    this.#tenants.delete(tenant);
  }

  /** The exported label sets: the `topN` most active tenants by name, the rest as {@link OTHER_TENANTS}. */
  snapshot(topN = 20): Map<string, TenantCounts> {
    const ranked = [...this.#tenants].sort((a, b) => b[1].queries - a[1].queries);
    const out = new Map<string, TenantCounts>();
    const other = empty();
    ranked.forEach(([name, counts], i) => {
      if (i < topN) out.set(name, counts);
      else add(other, counts);
    });
    if (ranked.length > topN) out.set(OTHER_TENANTS, other);
    return out;
  }

  /** Registers the counters and the latency histogram on `registry`. */
  register(registry: client.Registry, topN = 20, prefix = 'tenantry_tenant_'): void {
    const snapshot = (): Map<string, TenantCounts> => this.snapshot(topN);
    new client.Counter({
      name: `${prefix}queries_total`,
      help: 'Queries (HTTP statements and gateway transactions) per tenant (top tenants, the rest as "_other").',
      labelNames: ['tenant'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [tenant, c] of snapshot()) this.inc({ tenant }, c.queries);
      },
    });
    new client.Counter({
      name: `${prefix}errors_total`,
      help: 'Failed queries per tenant.',
      labelNames: ['tenant'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [tenant, c] of snapshot()) this.inc({ tenant }, c.errors);
      },
    });
    const name = `${prefix}query_duration_seconds`;
    registry.registerMetric({
      name,
      help: 'Query latency per tenant.',
      type: 'histogram',
      aggregator: 'sum',
      reset: () => undefined,
      get: () => {
        const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = [];
        for (const [tenant, c] of snapshot()) {
          let cumulative = 0;
          BUCKETS.forEach((le, i) => {
            cumulative += c.buckets[i] ?? 0;
            values.push({ labels: { tenant, le }, value: cumulative, metricName: `${name}_bucket` });
          });
          values.push({ labels: { tenant, le: '+Inf' }, value: c.queries, metricName: `${name}_bucket` });
          values.push({ labels: { tenant }, value: c.sum, metricName: `${name}_sum` });
          values.push({ labels: { tenant }, value: c.queries, metricName: `${name}_count` });
        }
        return Promise.resolve({
          name,
          help: 'Query latency per tenant.',
          type: 'histogram',
          values,
          aggregator: 'sum',
        });
      },
    } as unknown as client.Metric);
  }
}
