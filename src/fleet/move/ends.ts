import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inTransaction, tenantFaceSchema, tenantObjectName, type Tenant } from '../../catalog/index.js';
import { removeCapture, waitForOlderTransactions } from './capture.js';
import {
  createStagedRole,
  dropDatabaseCopy,
  dropRoles,
  dropSchemaCopy,
  moveCredentialOwner,
} from './cutover.js';
import { onPlacement, type MoverDeps } from './deps.js';
import { describe } from './plan.js';
import { reusesRole, type Placement } from './placement.js';
import { deleteTenantRows, prepareSession } from './rows.js';
import { placementTables } from './tables.js';
import type { MoveOptions, MoveProgress, MoveRow } from './types.js';
import { longQuery } from '../../pool/long-query.js';

/** Makes the new copy: a database from the server's template, or a schema cloned from the template schema. */
export async function prepareNewCopy(
  deps: MoverDeps,
  tenant: Tenant,
  row: MoveRow,
  progress: (event: MoveProgress) => void,
): Promise<void> {
  const { target } = row;
  progress({ phase: 'prepare', message: `preparing the new copy (${describe(target)})` });
  if (target.isolation === 'database' && target.database) {
    const url = await deps.serverUrl(target.server);
    await dropDatabaseCopy(url, target); // a half-made copy of an earlier, killed run
    const password = randomBytes(24).toString('base64url');
    await deps.credentials.put(deps.admin, moveCredentialOwner(tenant.id), 'password', password);
    await deps.createDatabase(tenant, target.server, {
      database: target.database,
      role: target.roles[0] ?? tenantObjectName(tenant.uuid),
      password,
    });
  }
  if (target.isolation === 'schema') await prepareSchema(deps, tenant, row.source, target);
}

/** A schema copy: its role (unless kept), then the template's clone under a staging face name. */
async function prepareSchema(
  deps: MoverDeps,
  tenant: Tenant,
  source: Placement,
  target: Placement,
): Promise<void> {
  const { admin, roles, credentials } = deps;
  const role = target.roles[0];
  await inTransaction(admin, async (client) => {
    // one schema tenant at a time, as `tenant create` (interleaved clones deadlock)
    await client.query('SELECT pg_advisory_xact_lock(7303446192)');
    await dropSchemaCopy(client, target); // a half-made copy of an earlier, killed run
    if (role && !reusesRole(source, target)) {
      await createStagedRole(client, roles, credentials, tenant, role, randomBytes(24).toString('base64url'));
    }
    // clone_schema also installs the runtime tables (migration 025).
    await client.query(
      longQuery('SELECT tenantry.clone_schema($1, $2, $3)', [
        target.schema,
        target.stagingFace,
        role ?? null,
      ]),
    );
  });
}

/**
 * After the switch: waits for the transactions that began before it, then drops the old copy
 * (its roles, rows, schemas or database) and the move row.
 */
export async function dropOldCopy(
  deps: MoverDeps,
  tenant: Tenant,
  row: MoveRow,
  options: MoveOptions,
  progress: (event: MoveProgress) => void,
): Promise<void> {
  const { source } = row;
  progress({ phase: 'cleanup', message: `dropping the old copy (${describe(source)})` });
  await deps.reload();
  deps.closePools({
    ...tenant,
    isolation: source.isolation,
    server: source.server,
    databaseName: source.database,
  });
  const id = tenant.id;
  const { target } = row;
  const oldRoles = reusesRole(source, target) ? [] : source.roles;
  if (source.isolation === 'database') {
    await dropDatabaseCopy(await deps.serverUrl(source.server), { ...source, roles: oldRoles });
  } else {
    await onPlacement(deps, source, async (db) => {
      await prepareSession(db, id);
      // transactions that began before the switch still see the old copy: the fence refuses
      // their writes until they end; only then does the fence go
      await waitForOlderTransactions(db, options.fenceTimeoutMs ?? 30_000);
      const tables = await placementTables(deps.admin, db, source, target);
      await dropRoles(db, oldRoles); // their sessions end before the fence goes
      await removeCapture(db, id, tables);
      // (a schema copy's tables go with its schema; its rows elsewhere, e.g. sequence values, one by one)
      const inSchema = `${pg.escapeIdentifier(source.schema ?? '')}.`;
      await deleteTenantRows(
        db,
        id,
        tables.filter((t) => source.isolation !== 'schema' || !t.source.startsWith(inSchema)),
        'source',
      );
      if (source.isolation === 'schema') await dropSchemaCopy(db, source);
      if (target.isolation === 'database') {
        await db.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(tenantFaceSchema(tenant.uuid))} CASCADE`);
      }
    });
  }
  if (target.isolation === 'shared' && target.roles.length > 0) {
    // a shared tenant's schema of own objects (its tenant views, columns), as its first login makes it
    await deps.admin.query("SELECT set_config('tenantry.tenant', $1, true), tenantry.ensure_own_schema()", [
      String(id),
    ]);
  }
  await deps.admin.query('DELETE FROM tenantry.tenant_move WHERE tenant_id = $1', [id]);
  progress({
    phase: 'done',
    message: `${tenant.name} now lives in ${describe(row.target)}`,
  });
}
