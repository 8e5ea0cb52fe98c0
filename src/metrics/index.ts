export { TenantMetrics } from './tenant-metrics.js';
export { createMetricsRegistry } from './registry.js';
export type { MetricsSources } from './registry.js';
