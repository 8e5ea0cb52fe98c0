import pg from 'pg';
import { MOVE_LOCK, tenantFaceSchema, tenantObjectName, type Tenant } from '../../catalog/index.js';
import { TenantryError } from '../../errors.js';
import { withClient } from '../../isolation/database.js';
import type { MoverDeps } from './deps.js';
import {
  checkMovable,
  checkNoOwnObjects,
  currentPlacement,
  freeRoleName,
  placementUrl,
  type Placement,
} from './placement.js';
import type { MoveOptions, MoveRow } from './types.js';

/** `shared tables on main`, `database tenantry_t_… on main`. */
export function describe(p: Placement): string {
  if (p.isolation === 'shared') return `shared tables on ${p.server}`;
  return p.isolation === 'schema'
    ? `schema ${p.schema} on ${p.server}`
    : `database ${p.database} on ${p.server}`;
}

/** Takes the session-level lock that keeps two movers of one tenant apart; answers its release. */
export async function lockMove(admin: pg.Pool, tenant: Tenant): Promise<() => void> {
  const client = await admin.connect();
  let ok = false;
  // a mover killed a moment ago holds the lock until PostgreSQL notices its connection is gone
  for (let attempt = 0; attempt < 50 && !ok; attempt++) {
    if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, 100));
    const { rows } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1, $2) AS ok', [
      MOVE_LOCK,
      tenant.id,
    ]);
    ok = rows[0]?.ok === true;
  }
  if (!ok) {
    client.release();
    throw new TenantryError('MOVE_IN_PROGRESS', {
      tenant: tenant.name,
      problem: 'another process is moving it right now',
    });
  }
  return () => {
    client.query('SELECT pg_advisory_unlock($1, $2)', [MOVE_LOCK, tenant.id]).then(
      () => client.release(),
      (error: unknown) => client.release(error instanceof Error ? error : true),
    );
  };
}

/** Plans a new move of `tenant` to `options.to` (validates; does not write). */
export async function planMove(
  deps: MoverDeps,
  tenant: Tenant,
  options: MoveOptions,
): Promise<Omit<MoveRow, 'phase' | 'applied' | 'stats'>> {
  const to = options.to;
  const server = options.server ?? 'main';
  if (to !== 'shared' && to !== 'schema' && to !== 'database') {
    throw new TenantryError('INVALID_ARGUMENT', {
      what: 'target isolation',
      problem: `${String(to)} is not shared, schema or database`,
    });
  }
  if (to !== 'database' && server !== 'main') {
    throw new TenantryError('INVALID_ARGUMENT', {
      what: 'server',
      problem:
        'shared tables and schema tenants live on the catalog server (main); place database tenants elsewhere',
    });
  }
  const serverUrl = await deps.serverUrl(server).catch((error: unknown) => {
    throw new TenantryError('SERVER_NOT_FOUND', { server }, { cause: error });
  });
  const source = await currentPlacement(deps.admin, tenant);
  if (source.isolation === to && source.server === server) {
    throw new TenantryError('INVALID_ARGUMENT', {
      what: 'target',
      problem: `${tenant.name} already lives in ${describe(source)}`,
    });
  }
  await checkMovable(deps.admin, tenant);
  await withClient(await placementUrl(deps, source), (db) =>
    checkNoOwnObjects(db, tenant, tenantFaceSchema(tenant.uuid), source),
  );
  const epoch = tenant.placementEpoch + 1;
  const name = tenantObjectName(tenant.uuid);
  const kept = to !== 'database' && source.isolation !== 'database' ? source.roles[0] : undefined;
  const fresh = async () =>
    withClient(to === 'database' ? serverUrl : deps.mainUrl, (db) => freeRoleName(db, tenant, epoch));
  let target: Placement;
  if (to === 'database') {
    // A database of that name already there is the tenant's own (the target server is the
    // source's cluster under another name) or a leftover: the move would drop it first.
    const taken = await withClient(serverUrl, (db) =>
      db.query('SELECT 1 FROM pg_catalog.pg_database WHERE datname = $1', [name]),
    );
    if (taken.rowCount) {
      throw new TenantryError('MOVE_UNSUPPORTED', {
        problem: `server ${server} already has a database ${name} (${
          source.isolation === 'database'
            ? `the tenant's own: ${server} is the cluster of ${source.server} under another name`
            : 'a leftover: `tenantry tenant repair` removes it'
        })`,
      });
    }
    target = { isolation: 'database', server, database: name, schema: null, roles: [await fresh()] };
  } else if (to === 'schema') {
    target = {
      isolation: 'schema',
      server: 'main',
      database: null,
      schema: name,
      stagingFace: `tenantry_m_${name.slice('tenantry_t_'.length)}`,
      roles: [kept ?? (await fresh())],
    };
  } else {
    const roles = kept ? [kept] : source.roles.length > 0 ? [await fresh()] : [];
    target = { isolation: 'shared', server: 'main', database: null, schema: null, roles };
  }
  return { tenantId: tenant.id, source, target };
}
