export { crossTenantScan, tenantSelection } from './scan.js';
export type { CrossTenantOptions, ScanFailure, ScanHost, ScanRow } from './scan.js';
export { createScanHost } from './host.js';
export type { ScanHostParts } from './host.js';
