export { crossTenantScan, tenantSelection } from './scan.js';
export type { CrossTenantOptions, ScanFailure, ScanHost, ScanRow } from './scan.js';
