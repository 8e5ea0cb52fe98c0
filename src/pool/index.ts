export { PoolManager } from './pool-manager.js';
export { connectionLost, isConnectionError, isRetryableRead } from './connection-errors.js';
export { SESSION_STATE, mayLeaveState } from './pooled-connection.js';
export type {
  Lease,
  PoolManagerOptions,
  PoolStats,
  PoolTarget,
  ServerPoolStats,
  TenantPoolStats,
} from './types.js';
