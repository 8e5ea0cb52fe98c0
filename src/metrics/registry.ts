import client from 'prom-client';
import type { GatewayStats } from '../gateway/index.js';
import type { PoolStats, TenantPoolStats } from '../pool/index.js';
import { OTHER_TENANTS, TenantMetrics } from './tenant-metrics.js';

/** Where the exported figures come from. */
export interface MetricsSources {
  readonly tenants: TenantMetrics;
  readonly pools: () => PoolStats;
  readonly gateway?: () => GatewayStats | undefined;
  /** Tenants exported by name (the rest are summed as `_other`). */
  readonly topN?: number;
}

/** Per-tenant pool figures with at most `topN` tenant labels (by checkouts) plus {@link OTHER_TENANTS}. */
function boundedPools(stats: readonly TenantPoolStats[], topN: number): Map<string, TenantPoolStats> {
  const out = new Map<string, TenantPoolStats>();
  [...stats]
    .sort((a, b) => b.checkouts - a.checkouts)
    .forEach((s, i) => {
      const name = i < topN ? s.tenantName : OTHER_TENANTS;
      const prev = out.get(name);
      out.set(
        name,
        prev
          ? {
              ...prev,
              inUse: prev.inUse + s.inUse,
              waiting: prev.waiting + s.waiting,
              checkouts: prev.checkouts + s.checkouts,
              timeouts: prev.timeouts + s.timeouts,
              waitMsTotal: prev.waitMsTotal + s.waitMsTotal,
              waitMsMax: Math.max(prev.waitMsMax, s.waitMsMax),
            }
          : s,
      );
    });
  return out;
}

/**
 * A Prometheus registry with tenantry's metrics: per tenant (label `tenant`, bounded) queries,
 * errors, latency, pool checkouts, waits and timeouts; live pools, connections in use and idle,
 * waiters, gateway clients; plus Node's default process metrics.
 */
export function createMetricsRegistry(sources: MetricsSources): client.Registry {
  const registry = new client.Registry();
  const topN = sources.topN ?? 20;
  client.collectDefaultMetrics({ register: registry, prefix: 'tenantry_process_' });
  sources.tenants.register(registry, topN);
  const perTenant = (name: string, help: string, value: (s: TenantPoolStats) => number): void => {
    new client.Counter({
      name,
      help,
      labelNames: ['tenant'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [tenant, s] of boundedPools(sources.pools().tenants, topN)) this.inc({ tenant }, value(s));
      },
    });
  };
  perTenant(
    'tenantry_tenant_pool_checkouts_total',
    'Connections checked out per tenant.',
    (s) => s.checkouts,
  );
  perTenant('tenantry_tenant_pool_timeouts_total', 'Checkouts that timed out per tenant.', (s) => s.timeouts);
  perTenant(
    'tenantry_tenant_pool_wait_seconds_total',
    'Time spent waiting for a connection per tenant.',
    (s) => s.waitMsTotal / 1000,
  );
  new client.Gauge({
    name: 'tenantry_tenant_pool_waiting',
    help: 'Checkouts waiting per tenant.',
    labelNames: ['tenant'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [tenant, s] of boundedPools(sources.pools().tenants, topN)) this.set({ tenant }, s.waiting);
    },
  });
  new client.Gauge({
    name: 'tenantry_pools',
    help: 'Live pools (one per server and identity).',
    registers: [registry],
    collect() {
      this.set(sources.pools().pools);
    },
  });
  new client.Gauge({
    name: 'tenantry_pool_waiters',
    help: 'Checkouts waiting for a connection.',
    registers: [registry],
    collect() {
      this.set(sources.pools().waiters);
    },
  });
  new client.Gauge({
    name: 'tenantry_connections',
    help: 'Backend connections per server, by state (in_use, idle) and the budget.',
    labelNames: ['server', 'state'],
    registers: [registry],
    collect() {
      this.reset();
      for (const s of sources.pools().servers) {
        this.set({ server: s.server, state: 'in_use' }, s.inUse);
        this.set({ server: s.server, state: 'idle' }, s.idle);
        this.set({ server: s.server, state: 'budget' }, s.budget);
      }
    },
  });
  new client.Gauge({
    name: 'tenantry_gateway_clients',
    help: 'Clients connected to the gateway, by state (active: holding a backend).',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      this.reset();
      const stats = sources.gateway?.();
      if (!stats) return;
      this.set({ state: 'active' }, stats.active);
      this.set({ state: 'idle' }, stats.clients - stats.active);
    },
  });
  return registry;
}
