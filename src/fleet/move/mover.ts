import { randomBytes } from 'node:crypto';
import pg from 'pg';
import {
  inTransaction,
  tenantFaceSchema,
  tenantObjectName,
  type CatalogRoles,
  type CredentialStore,
  type Tenant,
  type TenantRef,
} from '../../catalog/index.js';
import { TenantryError } from '../../errors.js';
import { withClient } from '../../isolation/database.js';
import {
  installCapture,
  pruneLog,
  readLog,
  removeCapture,
  setFence,
  waitForOlderTransactions,
  type Db,
} from './capture.js';
import {
  createStagedRole,
  dropDatabaseCopy,
  dropRoles,
  dropSchemaCopy,
  moveCredentialOwner,
  switchPlacement,
} from './cutover.js';
import {
  checkMovable,
  checkNoOwnObjects,
  currentPlacement,
  reusesRole,
  freeRoleName,
  placementUrl,
  type Placement,
  type PlacementUrls,
} from './placement.js';
import {
  applyChanges,
  BATCH,
  checksums,
  copySnapshot,
  deleteTenantRows,
  prepareSession,
  TouchedKeys,
  type TableSum,
} from './rows.js';
import { moveTables, placementTables, type MoveTable } from './tables.js';
import type { MoveOptions, MoveProgress, MoveReport, MoveRow } from './types.js';

/** What the mover needs of a tenantry instance. */
export interface MoverDeps extends PlacementUrls {
  readonly admin: pg.Pool;
  readonly roles: CatalogRoles;
  readonly credentials: CredentialStore;
  /** Creates a database tenant's role and database on a server (from the template). */
  createDatabase(
    tenant: { id: number; uuid: string; name: string },
    server: string,
    names: { database: string; role: string; password: string },
  ): Promise<void>;
  /** The tenant as the catalog has it now (not the cache). */
  showTenant(ref: TenantRef): Promise<Tenant>;
  /** Reloads this process's catalog cache. */
  reload(): Promise<void>;
  /** Closes this process's pools of the tenant's old placement. */
  closePools(tenant: Tenant): void;
}

/** Session-level advisory lock key of tenant moves (with the tenant id). */
const MOVE_LOCK = 730344620;

/** Opens an operator connection to a placement's database for the duration of `fn`. */
async function onPlacement<T>(
  deps: MoverDeps,
  placement: Placement,
  fn: (db: pg.Client) => Promise<T>,
): Promise<T> {
  return withClient(await placementUrl(deps, placement), fn);
}

/** One move run: from the phase recorded in the catalog to the end. */
export class MoveRun {
  readonly #deps: MoverDeps;
  readonly #options: MoveOptions;
  #row: MoveRow;
  #tenant: Tenant;
  readonly #report: {
    rows: number;
    changes: number;
    copyMs: number;
    snapshotVerifyMs: number;
    pauseMs: number;
    verified: number;
  };
  /** Keys changed since a snapshot copy this run verified; undefined after a resume (then all is re-checked). */
  #touched: TouchedKeys | undefined;
  /** How long each part of the cut-over took (ms). */
  readonly #pause = { waitMs: 0, drainMs: 0, verifyMs: 0, verify: 'full' as 'full' | 'changed rows' };

  constructor(deps: MoverDeps, tenant: Tenant, row: MoveRow, options: MoveOptions) {
    this.#deps = deps;
    this.#tenant = tenant;
    this.#row = row;
    this.#options = options;
    this.#report = { rows: 0, changes: 0, copyMs: 0, snapshotVerifyMs: 0, pauseMs: 0, verified: 0 };
  }

  #progress(event: MoveProgress): void {
    this.#options.onProgress?.(event);
  }

  async #phase(phase: MoveRow['phase'], extra: { applied?: string; stats?: Record<string, unknown> } = {}) {
    await this.#deps.admin.query(
      `UPDATE tenantry.tenant_move SET phase = $2, applied = coalesce($3::bigint, applied),
              stats = stats || $4::jsonb, updated_at = now() WHERE tenant_id = $1`,
      [this.#tenant.id, phase, extra.applied ?? null, JSON.stringify(extra.stats ?? {})],
    );
    this.#row = { ...this.#row, phase, applied: extra.applied ?? this.#row.applied };
  }

  /** Runs the remaining phases; answers the report. */
  async run(): Promise<MoveReport> {
    const started = Date.now();
    if (this.#row.phase === 'prepare') await this.#prepare();
    if (this.#row.phase === 'copy' || this.#row.phase === 'catchup') {
      await onPlacement(this.#deps, this.#row.source, (source) =>
        onPlacement(this.#deps, this.#row.target, async (target) => {
          await prepareSession(source, this.#tenant.id);
          await prepareSession(target, this.#tenant.id);
          const { tables, byOid } = await moveTables(this.#tenant.id, this.#deps.admin, {
            source,
            target,
            from: this.#row.source,
            to: this.#row.target,
          });
          if (this.#row.phase === 'copy') await this.#copy(source, target, tables);
          await this.#catchUp(source, target, tables, byOid);
        }),
      );
    }
    await this.#cleanup();
    const totalMs = Date.now() - started;
    const stats = this.#row.stats;
    return {
      tenant: this.#tenant.name,
      from: this.#row.source,
      to: this.#row.target,
      rows: this.#report.rows || Number(stats['rows'] ?? 0),
      changes: this.#report.changes,
      copyMs: this.#report.copyMs || Number(stats['copyMs'] ?? 0),
      snapshotVerifyMs: this.#report.snapshotVerifyMs || Number(stats['snapshotVerifyMs'] ?? 0),
      pauseMs: this.#report.pauseMs || Number(stats['pauseMs'] ?? 0),
      totalMs,
      verifiedTables: this.#report.verified || Number(stats['verifiedTables'] ?? 0),
      pause: this.#report.pauseMs ? { ...this.#pause } : undefined,
    };
  }

  async #prepare(): Promise<void> {
    const { target } = this.#row;
    this.#progress({ phase: 'prepare', message: `preparing the new copy (${describe(target)})` });
    if (target.isolation === 'database' && target.database) {
      const url = await this.#deps.serverUrl(target.server);
      await dropDatabaseCopy(url, target); // a half-made copy of an earlier, killed run
      const password = randomBytes(24).toString('base64url');
      await this.#deps.credentials.put(
        this.#deps.admin,
        moveCredentialOwner(this.#tenant.id),
        'password',
        password,
      );
      await this.#deps.createDatabase(this.#tenant, target.server, {
        database: target.database,
        role: target.roles[0] ?? tenantObjectName(this.#tenant.uuid),
        password,
      });
    }
    if (target.isolation === 'schema') await this.#prepareSchema(target);
    await this.#phase('copy');
  }

  /** A schema copy: its role (unless kept), then the template's clone under a staging face name. */
  async #prepareSchema(target: Placement): Promise<void> {
    const { admin, roles, credentials } = this.#deps;
    const role = target.roles[0];
    await inTransaction(admin, async (client) => {
      // one schema tenant at a time, as `tenant create` (interleaved clones deadlock)
      await client.query('SELECT pg_advisory_xact_lock(7303446192)');
      await dropSchemaCopy(client, target); // a half-made copy of an earlier, killed run
      if (role && !reusesRole(this.#row.source, target)) {
        await createStagedRole(
          client,
          roles,
          credentials,
          this.#tenant,
          role,
          randomBytes(24).toString('base64url'),
        );
      }
      await client.query('SELECT tenantry.clone_schema($1, $2, $3)', [
        target.schema,
        target.stagingFace,
        role ?? null,
      ]);
      await client.query('SELECT tenantry.runtime_install($1, $2, $3, $4, $5)', [
        target.schema,
        'tenantry_',
        roles.app,
        roles.maint,
        roles.owner,
      ]);
    });
  }

  async #copy(source: pg.ClientBase, target: pg.ClientBase, tables: readonly MoveTable[]): Promise<void> {
    const id = this.#tenant.id;
    await installCapture(source, id, tables, this.#row.source.isolation === 'shared');
    // every write not in the snapshot below is now captured: transactions older than the triggers are over
    await waitForOlderTransactions(source, this.#options.fenceTimeoutMs ?? 30_000, this.#options.signal);
    await deleteTenantRows(target, id, tables, 'target'); // what an interrupted copy left
    const started = Date.now();
    let rows = 0;
    await source.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    try {
      rows = await copySnapshot(
        source,
        target,
        id,
        tables,
        (table, n) => this.#progress({ phase: 'copy', table: table.name, rows: (rows += n) }),
        this.#options.signal,
      );
      // the copy against its own snapshot, outside the write pause: the cut-over then re-checks
      // only the rows changed since (and every count)
      this.#report.copyMs = Date.now() - started;
      this.#progress({ phase: 'copy', message: `verifying ${rows} copied rows` });
      const [before, after] = await Promise.all([
        checksums(source, id, tables, 'source'),
        checksums(target, id, tables, 'target'),
      ]);
      this.#compare(before, after, tables);
      this.#touched = new TouchedKeys();
    } finally {
      await source.query('COMMIT').catch(() => undefined);
    }
    this.#report.rows = rows;
    this.#report.snapshotVerifyMs = Date.now() - started - this.#report.copyMs;
    await this.#phase('catchup', {
      applied: '0',
      stats: { rows, copyMs: this.#report.copyMs, snapshotVerifyMs: this.#report.snapshotVerifyMs },
    });
  }

  /** Applies captured changes until few remain, then fences, drains, verifies and switches. */
  async #catchUp(source: Db, target: Db, tables: readonly MoveTable[], byOid: Map<number, MoveTable>) {
    const id = this.#tenant.id;
    const below = this.#options.cutoverBelow ?? 200;
    for (;;) {
      this.#options.signal?.throwIfAborted();
      const applied = await this.#drainOnce(source, target, byOid);
      if (applied >= below) continue;
      await setFence(source, id, true);
      const fenced = Date.now();
      this.#progress({ phase: 'cutover', message: 'writes paused: draining the last changes' });
      try {
        await waitForOlderTransactions(source, this.#options.fenceTimeoutMs ?? 30_000);
        const waited = Date.now();
        this.#pause.waitMs = waited - fenced;
        while ((await this.#drainOnce(source, target, byOid)) > 0);
        const drained = Date.now();
        this.#pause.drainMs = drained - waited;
        await this.#verify(source, target, tables);
        this.#pause.verifyMs = Date.now() - drained;
      } catch (error) {
        await setFence(source, id, false).catch(() => undefined);
        throw error;
      }
      const pauseMs = Date.now() - fenced;
      this.#report.pauseMs = pauseMs;
      await switchPlacement(this.#deps.admin, this.#deps.roles, this.#deps.credentials, {
        tenant: this.#tenant,
        source: this.#row.source,
        target: this.#row.target,
        stats: {
          pauseMs: Date.now() - fenced,
          verifiedTables: tables.length,
          changes: this.#report.changes,
          ...this.#pause,
        },
      });
      this.#report.pauseMs = Date.now() - fenced;
      this.#row = { ...this.#row, phase: 'cleanup' };
      this.#progress({
        phase: 'cutover',
        message: `switched to ${describe(this.#row.target)} after a ${pauseMs} ms write pause`,
      });
      return;
    }
  }

  /** Applies one batch of captured changes; answers how many. */
  async #drainOnce(source: Db, target: Db, byOid: Map<number, MoveTable>): Promise<number> {
    const changes = await readLog(source, this.#tenant.id, BATCH);
    if (changes.length === 0) return 0;
    await target.query('BEGIN');
    try {
      await applyChanges(source, target, changes, byOid);
      await target.query('COMMIT');
    } catch (error) {
      await target.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
    const last = changes[changes.length - 1]?.id ?? this.#row.applied;
    await pruneLog(
      source,
      changes.map((c) => c.id),
    );
    await this.#phase('catchup', { applied: last });
    this.#touched?.add(changes, byOid);
    this.#report.changes += changes.length;
    this.#progress({ phase: 'catchup', changes: this.#report.changes });
    return changes.length;
  }

  /**
   * Under the fence: every table's row count, and the checksums of the rows changed since the
   * verified snapshot copy — or, after a resume, of every row.
   */
  async #verify(source: Db, target: Db, tables: readonly MoveTable[]): Promise<void> {
    const id = this.#tenant.id;
    if (!this.#touched) {
      const [before, after] = await Promise.all([
        checksums(source, id, tables, 'source'),
        checksums(target, id, tables, 'target'),
      ]);
      this.#compare(before, after, tables);
      return;
    }
    // Rows nobody touched since the snapshot copy are equal on both sides (that copy was compared
    // with its snapshot); every touched row is compared here, present or gone, so the counts
    // follow without counting every row under the fence.
    this.#pause.verify = 'changed rows';
    const keys = this.#touched.byTable();
    const [before, after] = await Promise.all([
      checksums(source, id, tables, 'source', keys),
      checksums(target, id, tables, 'target', keys),
    ]);
    this.#compare(before, after, tables);
  }

  #compare(
    before: ReadonlyMap<string, TableSum>,
    after: ReadonlyMap<string, TableSum>,
    tables: readonly MoveTable[],
  ): void {
    for (const table of tables) {
      const a = before.get(table.name);
      const b = after.get(table.name);
      if (a?.rows !== b?.rows || a?.sum !== b?.sum) {
        throw new TenantryError('MOVE_VERIFY_FAILED', {
          tenant: this.#tenant.name,
          problem: `${table.name}: ${a?.rows} rows (checksum ${a?.sum}) in the old copy, ${b?.rows} (${b?.sum}) in the new one`,
        });
      }
    }
    this.#report.verified = tables.length;
  }

  /** After the switch: the old copy goes (its roles, rows or database), then the move row. */
  async #cleanup(): Promise<void> {
    const { source } = this.#row;
    this.#progress({ phase: 'cleanup', message: `dropping the old copy (${describe(source)})` });
    await this.#deps.reload();
    this.#deps.closePools({
      ...this.#tenant,
      isolation: source.isolation,
      server: source.server,
      databaseName: source.database,
    });
    const id = this.#tenant.id;
    const { target } = this.#row;
    const oldRoles = reusesRole(source, target) ? [] : source.roles;
    if (source.isolation === 'database') {
      await dropDatabaseCopy(await this.#deps.serverUrl(source.server), { ...source, roles: oldRoles });
    } else {
      await onPlacement(this.#deps, source, async (db) => {
        await prepareSession(db, id);
        // transactions that began before the switch still see the old copy: the fence refuses
        // their writes until they end; only then does the fence go
        await waitForOlderTransactions(db, this.#options.fenceTimeoutMs ?? 30_000);
        const tables = await placementTables(this.#deps.admin, db, source, target);
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
          await db.query(
            `DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(tenantFaceSchema(this.#tenant.uuid))} CASCADE`,
          );
        }
      });
    }
    if (target.isolation === 'shared' && target.roles.length > 0) {
      // a shared tenant's schema of own objects (its tenant views, columns), as its first login makes it
      await this.#deps.admin.query(
        "SELECT set_config('tenantry.tenant', $1, true), tenantry.ensure_own_schema()",
        [String(id)],
      );
    }
    await this.#deps.admin.query('DELETE FROM tenantry.tenant_move WHERE tenant_id = $1', [id]);
    this.#progress({
      phase: 'done',
      message: `${this.#tenant.name} now lives in ${describe(this.#row.target)}`,
    });
  }
}

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
