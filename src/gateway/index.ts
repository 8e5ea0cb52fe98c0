export { Gateway } from './gateway.js';
export type { GatewayOptions, GatewayStats, GatewayTenantStats } from './gateway.js';
export type { GatewayHost } from './host.js';
export { createGatewayHost } from './host.js';
