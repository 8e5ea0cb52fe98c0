/**
 * The one registry of tenantry's error codes. Every error tenantry raises on purpose is a
 * {@link TenantryError} with a code from {@link errorCodes}; each code carries its message
 * template, HTTP status and SQLSTATE so every face (library, CLI, gateway, HTTP) answers alike.
 */

interface ErrorSpec {
  /** Message template; `{name}` placeholders are filled from the error's details. */
  readonly message: string;
  /** HTTP status the HTTP API answers with. */
  readonly status: number;
  /** SQLSTATE used on the Postgres wire and by SQL functions. */
  readonly sqlstate: string;
}

/** Every error code tenantry raises, without the `TENANTRY_ERR_` prefix. */
export const errorCodes = {
  CONFIG: {
    message: 'Invalid configuration: {problem}',
    status: 500,
    sqlstate: 'F0000',
  },
  INVALID_ARGUMENT: {
    message: 'Invalid {what}: {problem}',
    status: 400,
    sqlstate: '22023',
  },
  NO_TENANT: {
    message:
      'No tenant in context: wrap the call in withTenant(tenant, fn) or pass a tenant explicitly (there is no silent default tenant).',
    status: 400,
    sqlstate: '42501',
  },
  TENANT_NOT_FOUND: {
    message: 'Tenant {tenant} does not exist.',
    status: 404,
    sqlstate: '42704',
  },
  TENANT_EXISTS: {
    message: 'A tenant named {tenant} already exists (names are unique, case-insensitively).',
    status: 409,
    sqlstate: '42710',
  },
  TENANT_DISABLED: {
    message: 'Tenant {tenant} is disabled; enable it with `tenantry tenant enable {tenant}`.',
    status: 403,
    sqlstate: '42501',
  },
  TENANT_LOCKED: {
    message:
      'Tenant {tenant} is locked: only the operator may reach it; unlock it with `tenantry tenant unlock {tenant}`.',
    status: 403,
    sqlstate: '42501',
  },
  TENANT_KIND: {
    message: 'Tenant {tenant} is a {kind} tenant: {problem}',
    status: 409,
    sqlstate: '42501',
  },
  FORCE_REQUIRED: {
    message: '{operation} deletes data and cannot be undone; repeat it with --force (or { force: true }).',
    status: 409,
    sqlstate: '55000',
  },
  TABLE_NOT_FOUND: {
    message: 'Table {table} does not exist.',
    status: 404,
    sqlstate: '42P01',
  },
  TABLE_SHAPE: {
    message: 'Table {table} cannot be made multi-tenant: {problem}',
    status: 400,
    sqlstate: '42P16',
  },
  CATALOG_NOT_INSTALLED: {
    message:
      'The tenantry catalog is not installed in this database; run `tenantry serve` or createTenantry({ install: true }) once.',
    status: 503,
    sqlstate: '55000',
  },
  CATALOG_ROLES_TAKEN: {
    message:
      'The roles {role}… belong to the tenantry catalog of database {other}; database {database} would share them (role names keep only lower-case letters, digits and _ of the database name). Use a database whose name differs in more than case or punctuation.',
    status: 409,
    sqlstate: '42710',
  },
  CATALOG_TOO_NEW: {
    message:
      'The tenantry catalog is at version {found}, newer than this tenantry ({supported}); upgrade tenantry.',
    status: 503,
    sqlstate: '55000',
  },
  DATABASE_UNREACHABLE: {
    message: 'Cannot reach PostgreSQL at {where}: {problem}',
    status: 503,
    sqlstate: '08006',
  },
  SERVER_VERSION: {
    message: 'PostgreSQL {found} is too old: tenantry needs PostgreSQL 15 or newer (security_invoker views).',
    status: 503,
    sqlstate: '0A000',
  },
  EMBEDDED_START: {
    message: 'Cannot start the embedded PostgreSQL: {problem}',
    status: 503,
    sqlstate: '08006',
  },
  NO_SERVER: {
    message:
      'No database to talk to: pass --database-url, set TENANTRY_DATABASE_URL, or start `tenantry serve` with the same --data-dir ({dataDir}).',
    status: 503,
    sqlstate: '08006',
  },
  PORT_IN_USE: {
    message: 'Port {port} ({what}) is already in use; choose another with {flag}.',
    status: 503,
    sqlstate: '08006',
  },
  TENANT_NO_ROLE: {
    message:
      'Tenant {tenant} has no login role of its own; create it with `tenantry tenant create {tenant} --login-role` or tenants.ensureLoginRole().',
    status: 409,
    sqlstate: '42704',
  },
  POOL_TIMEOUT: {
    message:
      "Tenant {tenant} waited {waitedMs} ms for a connection to server {server} and gave up: the server's connection budget or the tenant's share of it is in use. Retry, raise pool.budget / pool.perTenantMax, or find the slow queries.",
    status: 503,
    sqlstate: '53300',
  },
  SERVER_NOT_FOUND: {
    message: 'Server {server} is not registered; add it with `tenantry server add {server} URL`.',
    status: 404,
    sqlstate: '42704',
  },
  SERVER_IN_USE: {
    message: 'Server {server} still holds {tenants} tenant(s); move or drop them first.',
    status: 409,
    sqlstate: '55006',
  },
  PROVISION_FAILED: {
    message:
      'The change is recorded in the catalog but could not be applied to these tenants yet: {tenants}. Fix the cause and run the same command again.',
    status: 500,
    sqlstate: '55000',
  },
  SEQUENCE_NOT_FOUND: {
    message: 'Sequence {sequence} does not exist; create it with `tenantry sequence create {sequence}`.',
    status: 404,
    sqlstate: '42P01',
  },
  JOB_NOT_FOUND: {
    message:
      'No job {job} to {action}: it does not exist for this tenant (or any, without --tenant), or its state does not allow it (retry: failed or cancelled jobs; cancel: queued, running or failed).',
    status: 404,
    sqlstate: '42704',
  },
  JOB_LEASE_LOST: {
    message:
      'Job {job} of tenant {tenant} is no longer leased by this worker (its lease expired and another worker took it, or it was cancelled); this run was rolled back.',
    status: 409,
    sqlstate: '40001',
  },
  GROUP_CONFLICT: {
    message: 'Cannot {action}: {problem}',
    status: 409,
    sqlstate: '55000',
  },
  TENANT_VIEW: {
    message: '{problem}',
    status: 400,
    sqlstate: '42809',
  },
  NOT_ALLOCATED: {
    message:
      'The segment of tenant {tenant} in {table} is not allocated; allocate it with `tenantry tenant allocate`.',
    status: 409,
    sqlstate: '55000',
  },
  INDEX_LIMIT: {
    message:
      '{table} already has {count} tenant indexes (max_tenant_indexes_per_table); every index slows planning and writes for all tenants.',
    status: 409,
    sqlstate: '54000',
  },
  FORBIDDEN: {
    message: '{problem}',
    status: 403,
    sqlstate: '42501',
  },
  RIGHTS_UNAVAILABLE: {
    message:
      "Tenant {tenant}'s database on server {server} cannot refuse schema changes to read and write users (its DDL guard is an event trigger, which only a superuser can create); use the tenant's admin role, or register server {server} with a superuser's URL.",
    status: 409,
    sqlstate: '55000',
  },
  TOKEN_AUDIENCE: {
    message: 'The token is not meant for this audience (expected {audience}).',
    status: 401,
    sqlstate: '28000',
  },
  TOKEN_REVOKED: {
    message: 'The token {id} has been revoked.',
    status: 401,
    sqlstate: '28000',
  },
  CLOSED: {
    message: 'This tenantry instance has been closed.',
    status: 503,
    sqlstate: '57P01',
  },
  MASTER_KEY_INVALID: {
    message:
      'Invalid master key in {source}: {problem}. A master key is 32 random bytes, base64-encoded, e.g. from `openssl rand -base64 32`; during rotation pass NEW,OLD separated by a comma.',
    status: 500,
    sqlstate: 'F0000',
  },
  CREDENTIAL_DECRYPT: {
    message:
      'Cannot decrypt the {field} credential of {owner}: {reason}. Check TENANTRY_MASTER_KEY (a rotated-out key must stay listed until `tenantry rotate-key` has run).',
    status: 500,
    sqlstate: 'F0000',
  },
  MASTER_KEY_MISMATCH: {
    message:
      "TENANTRY_MASTER_KEY does not match the key the catalog's credentials were encrypted with (key id {found} is not in the key ring {ring}). Pass the original key, or old and new keys as NEW,OLD during rotation.",
    status: 500,
    sqlstate: 'F0000',
  },
  DOMAIN_NOT_FOUND: {
    message: 'Domain {domain} does not exist; add it with `tenantry domain add {domain} --tenant TENANT`.',
    status: 404,
    sqlstate: '42704',
  },
  DOMAIN_EXISTS: {
    message: 'A domain named {domain} already exists (names are unique, case-insensitively).',
    status: 409,
    sqlstate: '42710',
  },
  USER_NOT_FOUND: {
    message: 'User {user} does not exist; add it with `tenantry user add {user} --password-stdin`.',
    status: 404,
    sqlstate: '42704',
  },
  USER_EXISTS: {
    message: 'User {user} already exists (user names are unique per domain, case-insensitively).',
    status: 409,
    sqlstate: '42710',
  },
  AUTH: {
    message: 'Authentication failed: unknown user or wrong password.',
    status: 401,
    sqlstate: '28P01',
  },
  AUTH_SYSTEM_UNKNOWN: {
    message:
      'Domain {domain} authenticates with {authSystem}, which is not registered in this process; call authenticators.register({authSystem}, fn) at start-up.',
    status: 500,
    sqlstate: '28000',
  },
  TOKEN_INVALID: {
    message: 'The principal is not valid: {problem}. Log in again to get a new one.',
    status: 401,
    sqlstate: '28000',
  },
  TOKEN_EXPIRED: {
    message: 'The principal expired at {expiredAt}; log in again to get a new one.',
    status: 401,
    sqlstate: '28000',
  },
  INSECURE_TRANSPORT: {
    message:
      'A token login sends the token as a cleartext password: it is accepted over TLS or from loopback only. Configure a certificate (--tls-cert/--tls-key) or connect locally.',
    status: 400,
    sqlstate: '28000',
  },
  DATABASE_NOT_FOUND: {
    message: 'Database {database} does not exist: connect to database {expected}.',
    status: 404,
    sqlstate: '3D000',
  },
  TOO_MANY_CONNECTIONS: {
    message: 'Too many connections {scope} (limit {limit}).',
    status: 429,
    sqlstate: '53300',
  },
  UNAUTHENTICATED: {
    message: 'Missing or malformed credentials: send Authorization: Bearer <token>.',
    status: 401,
    sqlstate: '28000',
  },
  ROUTE_NOT_FOUND: {
    message: 'No route {method} {url}.',
    status: 404,
    sqlstate: '42704',
  },
  UNSUPPORTED_MEDIA_TYPE: {
    message: 'Unsupported content type: send application/json.',
    status: 415,
    sqlstate: '22023',
  },
  AUDIT_HAZARDS: {
    message:
      '{count} high-severity isolation hazard(s) in database {database}: see the report above and fix them (tenantry audit).',
    status: 409,
    sqlstate: '55000',
  },
  MIGRATION_LOCKED: {
    message:
      'Another `tenantry migrate` is running on this catalog (it holds the migrate lock{holder}); wait for it to finish, or stop it — a stopped run loses nothing and the next one continues.',
    status: 409,
    sqlstate: '55P03',
  },
  MIGRATION_MISMATCH: {
    message: 'The migrations given do not match those the catalog applied: {problem}.',
    status: 409,
    sqlstate: '55000',
  },
  MIGRATION_FAILED: {
    message:
      '{failed} target(s) failed to migrate ({first}); the others are done. Fix the cause and run `tenantry migrate` again: it continues where each target stopped (`tenantry migrate status` lists them).',
    status: 500,
    sqlstate: '55000',
  },
  MIGRATION_INTERRUPTED: {
    message:
      'Migration interrupted: {pending} tenant(s) not started yet (every finished tenant is committed, none is half-done). Run `tenantry migrate` again to continue.',
    status: 503,
    sqlstate: '57014',
  },
  INTERNAL: {
    message: 'Internal error; see the server log.',
    status: 500,
    sqlstate: 'XX000',
  },
  TABLESPACE_NOT_FOUND: {
    message:
      'Tablespace {tablespace} does not exist on server {server}; create it there first (`tenantry server create-tablespace {server} {tablespace} --location DIR`).',
    status: 404,
    sqlstate: '42704',
  },
  TABLESPACE_UNSUPPORTED: {
    message:
      'Tenant {tenant} is a {isolation} tenant: {problem}. Only schema and database tenants have a tablespace of their own; give it one with --isolation schema or database.',
    status: 409,
    sqlstate: '55000',
  },
  CONNECTION_LOST: {
    message:
      'The connection to PostgreSQL was lost or stopped answering ({problem}); the statement may or may not have run. Retry once PostgreSQL is reachable again, if repeating it is safe.',
    status: 503,
    sqlstate: '08006',
  },
  TENANT_MOVED: {
    message:
      'Tenant {tenant} was moved to another placement while this call was routed to the old one; nothing ran. Run the call again.',
    status: 503,
    sqlstate: '40001',
  },
  MOVE_UNSUPPORTED: {
    message: 'This tenant move cannot be done: {problem}',
    status: 409,
    sqlstate: '0A000',
  },
  MOVE_IN_PROGRESS: {
    message:
      'Tenant {tenant} is being moved ({problem}); run `tenantry tenant move {tenant}` again to resume it, or with --abort to roll it back.',
    status: 409,
    sqlstate: '55006',
  },
  MOVE_NOT_FOUND: {
    message: 'Tenant {tenant} has no move under way.',
    status: 404,
    sqlstate: '42704',
  },
  MOVE_VERIFY_FAILED: {
    message:
      'The new copy of tenant {tenant} does not match the old one ({problem}); the tenant stays where it was. Run the move again.',
    status: 500,
    sqlstate: 'XX001',
  },
  MOVE_TIMEOUT: {
    message:
      'The cut-over could not fence the tenant in time: {problem}. Its writes resumed on the old copy; run the move again (or end the long transactions).',
    status: 503,
    sqlstate: '55P03',
  },
  TRANSFER_CORRUPT: {
    message:
      'The export file is damaged or incomplete: {problem}. Nothing was imported; export the tenant again (or use an intact copy of the file).',
    status: 422,
    sqlstate: '22P04',
  },
  TRANSFER_FORMAT: {
    message:
      'The export file has format version {found}; this tenantry reads version {supported}. Import it with a tenantry that reads that version, or export the tenant again with this one.',
    status: 422,
    sqlstate: '0A000',
  },
  TRANSFER_SHAPE: {
    message:
      '{table} does not match between the export and this installation: {problem}. Bring both to the same application migrations (`tenantry migrate`) and run it again; nothing was kept.',
    status: 409,
    sqlstate: '42804',
  },
  TRANSFER_CHECKSUM: {
    message:
      "The rows restored into {table} do not match the export ({found} restored, {expected} exported); nothing was kept. Check that both installations render the table's types alike and run it again.",
    status: 500,
    sqlstate: 'XX001',
  },
  TRANSFER_GROUPED: {
    message:
      "Tenant {tenant} cannot be exported: its rows of {table} belong to group {group} ({problem}). Remove it from the group first (`tenantry group remove {group} {tenant}`), or export it while it is the group's only member without rows of its own there.",
    status: 409,
    sqlstate: '55000',
  },
  TRANSFER_INTERRUPTED: {
    message: 'The tenant {operation} was interrupted; {outcome}. Run it again.',
    status: 503,
    sqlstate: '57014',
  },
} as const satisfies Record<string, ErrorSpec>;

/** A tenantry error code without its prefix, e.g. `'TENANT_DISABLED'`. */
export type ErrorCode = keyof typeof errorCodes;

/** Details that fill an error's message template and travel with the error. */
export type ErrorDetails = Readonly<Record<string, string | number | undefined>>;

function render(template: string, details: ErrorDetails): string {
  return template.replace(/\{(\w+)\}/g, (whole, key: string) => {
    const value = details[key];
    return value === undefined ? whole : String(value);
  });
}

/**
 * An error raised on purpose by tenantry. `code` is stable (`TENANTRY_ERR_…`), `status` and
 * `sqlstate` say how the HTTP and wire faces report it, and a PostgreSQL error that caused it
 * stays reachable as `cause` with its SQLSTATE and fields.
 */
export class TenantryError extends Error {
  /** The full, stable code, e.g. `TENANTRY_ERR_TENANT_DISABLED`. */
  readonly code: `TENANTRY_ERR_${ErrorCode}`;
  /** HTTP status for this error. */
  readonly status: number;
  /** SQLSTATE for this error on the Postgres wire. */
  readonly sqlstate: string;
  /** The values the message was built from. */
  readonly details: ErrorDetails;

  constructor(code: ErrorCode, details: ErrorDetails = {}, options?: { cause?: unknown }) {
    const spec: ErrorSpec = errorCodes[code];
    super(render(spec.message, details), options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TenantryError';
    this.code = `TENANTRY_ERR_${code}`;
    this.status = spec.status;
    this.sqlstate = spec.sqlstate;
    this.details = details;
  }
}

/** Whether `error` is a {@link TenantryError}, optionally with the given short code. */
export function isTenantryError(error: unknown, code?: ErrorCode): error is TenantryError {
  return error instanceof TenantryError && (code === undefined || error.code === `TENANTRY_ERR_${code}`);
}

/**
 * Whether a PostgreSQL error was raised by one of tenantry's own functions (schema `tenantry`,
 * PL/pgSQL): the innermost line of its context names the function. A tenant's SQL can raise any
 * message and SQLSTATE (`DO $$ BEGIN RAISE … $$`), but never from a function of that schema.
 */
function raisedByTenantry(error: Error): boolean {
  const where = (error as { where?: unknown }).where;
  return typeof where === 'string' && /^PL\/pgSQL function tenantry\./.test(where);
}

/**
 * Maps a PostgreSQL error raised by tenantry's own SQL functions back to a TenantryError:
 * the functions raise with `MESSAGE = 'TENANTRY_ERR_<CODE>: …'` (or SQLSTATE TN001 for a moved
 * tenant), which this recognises — only from those functions, so tenant SQL cannot forge them.
 */
export function fromDatabaseError(error: unknown): unknown {
  if (!(error instanceof Error) || !raisedByTenantry(error)) return error;
  if ((error as { code?: unknown }).code === 'TN001') {
    const tenant = /tenant (-?\d+)/.exec(error.message)?.[1] ?? '?';
    return new TenantryError('TENANT_MOVED', { tenant }, { cause: error });
  }
  const match = /^TENANTRY_ERR_([A-Z_]+): ?(.*)$/s.exec(error.message);
  if (!match?.[1] || !(match[1] in errorCodes)) return error;
  const code = match[1] as ErrorCode;
  const wrapped = new TenantryError(code, {}, { cause: error });
  Object.defineProperty(wrapped, 'message', { value: match[2] ?? wrapped.message });
  return wrapped;
}
