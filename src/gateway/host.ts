import { randomBytes } from 'node:crypto';
import type { Tenant } from '../catalog/index.js';
import { TenantryError } from '../errors.js';
import type { Permission, Principal, UserRecord, UserRef } from '../identity/index.js';
import type { Logger } from '../logger.js';
import type { Lease, PoolTarget } from '../pool/index.js';
import type { TenantRoute } from '../session/index.js';

/**
 * What the gateway needs from a tenantry instance: identities, the catalog, tenant routes and the
 * pool of pools. Kept narrow so the gateway never holds the operator's connection.
 */
export interface GatewayHost {
  readonly logger: Logger;
  /** A user with its SCRAM verifier, or `undefined`. */
  findUser(ref: UserRef): Promise<UserRecord | undefined>;
  /** Verifies a sealed principal or a delegation token (expiry, revocation, user still there). */
  authorizeToken(token: string): Promise<Principal>;
  /** Whether the delegation token (or principal) with this id has been revoked. */
  revoked(id: string): Promise<boolean>;
  /** The current catalog entry of a tenant (id, uuid or name). */
  tenant(ref: number | string): Tenant | undefined;
  /**
   * The route of a tenant's SQL under its own login role for `permission` (the role is created
   * when the tenant has none yet).
   */
  route(tenant: Tenant, permission: Permission): Promise<TenantRoute>;
  /** Checks a connection out of the pool of pools. */
  acquire(target: PoolTarget): Promise<Lease>;
  /** A checkout the pool can serve at once (an idle connection, nobody waiting), else `undefined`. */
  tryAcquire(target: PoolTarget): Lease | undefined;
  /** Server parameters reported to clients at connect (server_version, TimeZone…). */
  serverParameters(): Promise<ReadonlyMap<string, string>>;
  /**
   * Checks a client's tracked startup settings with PostgreSQL (as a server checks them at
   * connect time) and answers the values PostgreSQL reports for them (`DateStyle` `iso` →
   * `ISO, MDY`). A value PostgreSQL refuses is TENANTRY_ERR_INVALID_ARGUMENT (22023).
   */
  checkSettings(settings: ReadonlyMap<string, string>): Promise<ReadonlyMap<string, string>>;
  /** Records one transaction of `tenant` in the tenant metrics. */
  observe(tenant: string, seconds: number, ok: boolean): void;
  /**
   * The secret unknown users' mock SCRAM verifiers derive from: one per catalog (stored in
   * `tenantry.secret`), so every process and restart answers an unknown user with the same salt,
   * as it would a real one.
   */
  mockSecret(): Promise<Buffer>;
}

/** The parts of a tenantry instance a {@link GatewayHost} is made of. */
export interface GatewayHostParts {
  readonly logger: Logger;
  readonly findUser: (ref: UserRef) => Promise<UserRecord | undefined>;
  readonly authorizeToken: (token: string) => Promise<Principal>;
  readonly revoked: (id: string) => Promise<boolean>;
  readonly tenant: (ref: number | string) => Tenant | undefined;
  /** Makes the tenant ready for its login role (creates the role, grants its schema); answers it. */
  readonly ensureLoginRole: (tenant: Tenant) => Promise<Tenant>;
  readonly route: (tenant: Tenant, permission: Permission) => TenantRoute;
  readonly acquire: (target: PoolTarget) => Promise<Lease>;
  readonly tryAcquire: (target: PoolTarget) => Lease | undefined;
  readonly query: (sql: string) => Promise<{ rows: Record<string, string>[] }>;
  readonly observe: (tenant: string, seconds: number, ok: boolean) => void;
}

/** Settings reported to every client at connect, read once from the server. */
const REPORTED = [
  'server_version',
  'server_encoding',
  'DateStyle',
  'IntervalStyle',
  'TimeZone',
  'integer_datetimes',
  'standard_conforming_strings',
];

/** Builds a {@link GatewayHost} over a tenantry instance's parts. */
/** Checked settings remembered (`name=value` → reported value); cleared when this many. */
const CHECKED_SETTINGS = 1024;

function literal(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

/** Reads the catalog's mock-verifier secret, storing a random one first when there is none. */
async function readMockSecret(parts: GatewayHostParts): Promise<Buffer> {
  for (let attempt = 0; attempt < 3; attempt++) {
    // Hex only, so the literal is safe. One statement: the insert's row, or the stored one (a
    // concurrent first insert by another process is not visible to it: then the next attempt).
    const { rows } = await parts.query(
      `WITH stored AS (
         INSERT INTO tenantry.secret (name, value) VALUES ('${MOCK_SECRET}', '${randomBytes(32).toString('hex')}')
         ON CONFLICT (name) DO NOTHING RETURNING value)
       SELECT value FROM stored UNION ALL SELECT value FROM tenantry.secret WHERE name = '${MOCK_SECRET}'`,
    );
    const value = rows[0]?.value;
    if (value !== undefined) return Buffer.from(value, 'hex');
  }
  throw new TenantryError('INTERNAL');
}
const MOCK_SECRET = 'scram_mock_secret';

export function createGatewayHost(parts: GatewayHostParts): GatewayHost {
  let parameters: Promise<ReadonlyMap<string, string>> | undefined;
  let mockSecret: Promise<Buffer> | undefined;
  const checked = new Map<string, string>();
  return {
    logger: parts.logger,
    findUser: parts.findUser,
    authorizeToken: parts.authorizeToken,
    revoked: parts.revoked,
    tenant: parts.tenant,
    acquire: parts.acquire,
    tryAcquire: parts.tryAcquire,
    observe: parts.observe,
    mockSecret() {
      mockSecret ??= readMockSecret(parts);
      mockSecret.catch(() => (mockSecret = undefined));
      return mockSecret;
    },
    async route(tenant, permission) {
      return parts.route(await parts.ensureLoginRole(tenant), permission);
    },
    serverParameters() {
      parameters ??= parts
        .query(`SELECT ${REPORTED.map((name, i) => `current_setting('${name}') AS p${i}`).join(', ')}`)
        .then(({ rows }) => new Map(REPORTED.map((name, i) => [name, rows[0]?.[`p${i}`] ?? ''])));
      // A failure (PostgreSQL down at the first login) is not remembered: the next login asks again.
      parameters.catch(() => (parameters = undefined));
      return parameters;
    },
    async checkSettings(settings) {
      const reported = new Map<string, string>();
      const unknown: [string, string][] = [];
      for (const [name, value] of settings) {
        const known = checked.get(`${name}=${value}`);
        if (known === undefined) unknown.push([name, value]);
        else reported.set(name, known);
      }
      if (unknown.length === 0) return reported;
      // is_local: the values are tried inside the statement's own transaction and undone with it.
      const sql = `SELECT ${unknown.map(([n, v], i) => `set_config(${literal(n)}, ${literal(v)}, true) AS p${i}`).join(', ')}`;
      let row: Record<string, string> | undefined;
      try {
        row = (await parts.query(sql)).rows[0];
      } catch (error) {
        const code = (error as { code?: unknown }).code;
        if (typeof code === 'string' && (code.startsWith('22') || code.startsWith('42'))) {
          throw new TenantryError('INVALID_ARGUMENT', {
            what: 'startup parameter',
            problem: error instanceof Error ? error.message : String(error),
          });
        }
        throw error;
      }
      if (checked.size + unknown.length > CHECKED_SETTINGS) checked.clear();
      unknown.forEach(([name, value], i) => {
        const answer = row?.[`p${i}`] ?? value;
        checked.set(`${name}=${value}`, answer);
        reported.set(name, answer);
      });
      return reported;
    },
  };
}
