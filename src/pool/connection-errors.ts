import { TenantryError } from '../errors.js';

/** SQLSTATEs and Node error codes that mean the connection itself is gone. */
const CONNECTION_SQLSTATES = new Set([
  '57P01',
  '57P02',
  '57P03',
  '08000',
  '08003',
  '08006',
  '08001',
  '08004',
]);
const SOCKET_CODES = new Set([
  'ECONNRESET',
  'EPIPE',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENOTCONN',
]);

/**
 * Whether `error` means the backend connection died (server shut down, backend terminated,
 * socket reset) rather than that the statement failed. Such a connection is discarded.
 */
export function isConnectionError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && (CONNECTION_SQLSTATES.has(code) || SOCKET_CODES.has(code))) return true;
  return /Connection terminated|connection is closed|Client has encountered a connection error|not queryable|Query read timeout/i.test(
    error.message,
  );
}

/**
 * A connection error ({@link isConnectionError}) as `TENANTRY_ERR_CONNECTION_LOST`: its message
 * and code as the problem, the original as `cause` — the one form the library, the gateway and
 * HTTP answer with.
 */
export function connectionLost(error: unknown): TenantryError {
  const original = error as { message?: unknown; code?: unknown };
  const message = typeof original.message === 'string' ? original.message : String(error);
  const problem = typeof original.code === 'string' ? `${message}, ${original.code}` : message;
  return new TenantryError('CONNECTION_LOST', { problem }, { cause: error });
}

const READ_ONLY = /^\s*(?:select|with|values|table|show)\b/i;
const WRITES =
  /\b(?:insert|update|delete|merge|into|nextval|setval|set_config|for\s+(?:no\s+key\s+)?update|for\s+(?:key\s+)?share|lock|call|do|copy|create|alter|drop|grant|revoke|truncate|pg_advisory)/i;

/**
 * Whether `sql` is a single read-only statement that may be retried on a fresh connection
 * after the connection died: re-running it cannot write twice. Conservative: anything that
 * might write, lock or call out is not.
 */
export function isRetryableRead(sql: string): boolean {
  const trimmed = sql.trim().replace(/;\s*$/, '');
  return READ_ONLY.test(trimmed) && !trimmed.includes(';') && !WRITES.test(trimmed);
}
