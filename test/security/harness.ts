import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { buildHttp, errorCodes, isTenantryError, type Permission, type Tenantry } from '../../src/index.js';
import { gatewayFixture, type GatewayFixture } from '../helpers/gateway.js';

/**
 * The faces tenants reach data through: the library under the application role (trusted code),
 * the library under the tenant's own login role, the wire gateway, and HTTP `/v1/sql`.
 */
export type FaceName = 'lib-app' | 'lib-tenant' | 'gateway' | 'http';
export const ALL_FACES: readonly FaceName[] = ['lib-app', 'lib-tenant', 'gateway', 'http'];
/** The faces that run SQL a tenant wrote (under its own login role). */
export const TENANT_FACES: readonly FaceName[] = ['lib-tenant', 'gateway', 'http'];
export const LIBRARY_FACES: readonly FaceName[] = ['lib-app', 'lib-tenant'];

/** seed 004's users (password `demo`) and what they are. */
export const USERS = {
  'alice@HomeDepot': { tenant: 'HomeDepot', permission: 'write' },
  'admin@HomeDepot': { tenant: 'HomeDepot', permission: 'admin' },
  'fred@Lowes': { tenant: 'Lowes', permission: 'write' },
  'nina@LowesNY': { tenant: 'LowesNY', permission: 'read' },
  'bob@LowesBos': { tenant: 'LowesBos', permission: 'write' },
} as const satisfies Record<string, { tenant: string; permission: Permission }>;
export type DemoUser = keyof typeof USERS;

/** What a statement answered. */
export interface Outcome {
  readonly rows: Record<string, unknown>[];
  readonly rowCount: number | null;
  readonly command: string | null;
}

/** A statement refused (by PostgreSQL, tenantry or HTTP), with its SQLSTATE. */
export class Refused extends Error {
  constructor(
    readonly sqlstate: string,
    message: string,
  ) {
    super(`${sqlstate}: ${message}`);
  }
}

/** One way in; `run` executes one statement as `user` (default alice@HomeDepot). */
export interface Face {
  readonly name: FaceName;
  run(sql: string, params?: unknown[], user?: DemoUser): Promise<Outcome>;
}

/** The SQLSTATE of whatever a face threw. */
export function sqlstateOf(error: unknown): string {
  if (error instanceof Refused) return error.sqlstate;
  if (isTenantryError(error)) return error.sqlstate;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : 'unknown';
}

/** Runs a statement; answers its outcome or the SQLSTATE it failed with. */
export async function attempt(
  face: Face,
  sql: string,
  params?: unknown[],
  user?: DemoUser,
): Promise<Outcome | { sqlstate: string; message: string }> {
  try {
    return await face.run(sql, params, user);
  } catch (error) {
    return { sqlstate: sqlstateOf(error), message: error instanceof Error ? error.message : String(error) };
  }
}

/** The demo behind every face: a database, the library, the gateway and the HTTP API. */
export interface SecurityFixture {
  readonly tenantry: Tenantry;
  readonly gw: GatewayFixture;
  readonly http: FastifyInstance;
  /** Sealed principals of the demo users, for HTTP. */
  readonly tokens: Record<DemoUser, string>;
  readonly faces: Record<FaceName, Face>;
  /** A gateway session of its own (closed with the fixture). */
  session(user?: DemoUser, options?: Partial<pg.ClientConfig>): Promise<pg.Client>;
  /** Runs SQL as the operator (a superuser): the ground truth. */
  operator<R extends pg.QueryResultRow = Record<string, unknown>>(
    sql: string,
    values?: unknown[],
  ): Promise<R[]>;
  /** A tenant's id. */
  id(tenant: string): number;
}

function libraryFace(tenantry: Tenantry, name: 'lib-app' | 'lib-tenant'): Face {
  return {
    name,
    async run(sql, params, user = 'alice@HomeDepot') {
      const { tenant, permission } = USERS[user];
      const result = await tenantry.withTenant(tenant, (db) => db.query(sql, params), {
        identity: name === 'lib-app' ? 'app' : 'tenant',
        permission,
      });
      return { rows: result.rows, rowCount: result.rowCount, command: result.command };
    },
  };
}

function httpFace(app: FastifyInstance, tokens: Record<DemoUser, string>): Face {
  return {
    name: 'http',
    async run(sql, params, user = 'alice@HomeDepot') {
      const response = await app.inject({
        method: 'POST',
        url: '/v1/sql',
        headers: { authorization: `Bearer ${tokens[user]}`, 'x-tenant-id': USERS[user].tenant },
        payload:
          params === undefined ? { sql } : { sql, params: params as (string | number | boolean | null)[] },
      });
      const body = response.json<{ code?: string; message?: string } & Record<string, unknown>>();
      if (response.statusCode !== 200) {
        const code = body.code ?? '';
        const state = code.startsWith('SQLSTATE_')
          ? code.slice('SQLSTATE_'.length)
          : (errorCodes[code.replace(/^TENANTRY_ERR_/, '') as keyof typeof errorCodes]?.sqlstate ?? code);
        throw new Refused(state, String(body.message));
      }
      return {
        rows: body.rows as Record<string, unknown>[],
        rowCount: body.rowCount as number | null,
        command: body.command as string | null,
      };
    },
  };
}

/** Starts the demo behind all faces (one database per test file). */
export async function securityFixture(label: string): Promise<SecurityFixture> {
  const gw = await gatewayFixture(label);
  const { tenantry } = gw;
  for (const tenant of ['HomeDepot', 'Lowes', 'LowesNY', 'LowesBos']) await tenantry.prepareLoginRole(tenant);
  const { app } = await buildHttp(tenantry, {
    logger: pino({ level: 'silent' }),
    adminToken: 'security-admin-token-0123456789',
    limits: { statementTimeoutMs: 2_000, rowLimit: 500 },
  });
  await app.ready();
  const tokens = {} as Record<DemoUser, string>;
  for (const user of Object.keys(USERS) as DemoUser[]) tokens[user] = await tenantry.login(user, 'demo');
  const sessions = new Map<DemoUser, pg.Client>();
  const gateway: Face = {
    name: 'gateway',
    async run(sql, params, user = 'alice@HomeDepot') {
      let client = sessions.get(user);
      if (!client) sessions.set(user, (client = await gw.connect(user)));
      const answer: pg.QueryResult | pg.QueryResult[] = await client.query(sql, params);
      // a multi-statement simple query answers one result per statement: keep the last
      const result = Array.isArray(answer) ? (answer.at(-1) as pg.QueryResult) : answer;
      return { rows: result.rows, rowCount: result.rowCount, command: result.command };
    },
  };
  return {
    tenantry,
    gw,
    http: app,
    tokens,
    faces: {
      'lib-app': libraryFace(tenantry, 'lib-app'),
      'lib-tenant': libraryFace(tenantry, 'lib-tenant'),
      gateway,
      http: httpFace(app, tokens),
    },
    session: (user = 'alice@HomeDepot', options) => gw.connect(user, 'demo', options),
    async operator<R extends pg.QueryResultRow>(sql: string, values?: unknown[]): Promise<R[]> {
      return (await tenantry.operator.query<R>(sql, values)).rows;
    },
    id(tenant) {
      const found = tenantry.catalog.get(tenant);
      if (!found) throw new Error(`no tenant ${tenant}`);
      return found.id;
    },
  };
}

/** Sets up the file's fixture; `prepare` adds what the file's cases need (as the operator). */
export function useFixture(
  label: string,
  prepare?: (fx: SecurityFixture) => Promise<void>,
): () => SecurityFixture {
  let fx: SecurityFixture | undefined;
  beforeAll(async () => {
    fx = await securityFixture(label);
    await prepare?.(fx);
  });
  afterAll(async () => {
    await fx?.http.close();
    await fx?.gw.close();
  });
  return () => {
    if (!fx) throw new Error('fixture not ready');
    return fx;
  };
}

/**
 * One attack case, run through each face it applies to. `bug` marks a successful attack: the
 * case is expected to fail on those faces (`it.fails`) until the named bug is fixed.
 */
export function attack(
  name: string,
  faces: readonly FaceName[],
  fx: () => SecurityFixture,
  fn: (face: Face, fx: SecurityFixture) => Promise<void>,
  options: { readonly bug?: { readonly faces: readonly FaceName[]; readonly name: string } } = {},
): void {
  describe(name, () => {
    for (const face of faces) {
      // SECURITY_SHOW_BUGS=1 runs known bugs as ordinary cases, to see how each attack succeeds
      const known = options.bug?.faces.includes(face) === true && process.env.SECURITY_SHOW_BUGS !== '1';
      (known ? it.fails : it)(known ? `${face} (known bug: ${options.bug?.name})` : face, () =>
        fn(fx().faces[face], fx()),
      );
    }
  });
}

/** Sorted values of one column of rows (as strings, so every face compares alike). */
export function column(rows: readonly Record<string, unknown>[], name: string): string[] {
  return rows.map((r) => String(r[name])).sort();
}

export const HOME_DEPOT_CUSTOMERS = ['Albert Hall', 'Candace Jones', 'Carrie Abrahm'];
export const LOWES_CUSTOMERS = ['Fred Smith', 'George Holmes', 'Joan Adlon'];
