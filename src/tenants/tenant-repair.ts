import pg from 'pg';
import type { CatalogRoles } from '../catalog/index.js';
import { withDatabase } from '../connection-url.js';
import type { DatabaseProvisioner } from '../isolation/index.js';
import { TENANT_OBJECTS_LOCK, findOrphans, knownObjects, type OrphanObject } from './orphans.js';
import { withClient } from '../isolation/database.js';
import { longQuery } from '../pool/long-query.js';

export type { OrphanObject } from './orphans.js';

/** Options of {@link TenantRepair.run}. */
export interface RepairOptions {
  /** Only report what would be done. */
  readonly dryRun?: boolean;
}

/** One object repair dealt with (or, in a dry run, would deal with). */
export interface RepairAction extends OrphanObject {
  /** What happened: `removed`, `would remove` (dry run), `skipped` (in progress) or `failed`. */
  readonly outcome: 'removed' | 'would remove' | 'skipped' | 'failed';
  /** Why it failed, for `failed`. */
  readonly error?: string;
}

/** What {@link TenantRepair.run} did. */
export interface RepairReport {
  readonly dryRun: boolean;
  /** Orphaned databases, roles and schemas on every registered server. */
  readonly orphans: readonly RepairAction[];
  /**
   * Database tenants whose database lacks a registered multi-tenant table (a table declared
   * while a process died before every database tenant got it): brought up to the registry.
   */
  readonly staleDatabases: readonly string[];
  /** Records of unfinished creations and drops whose objects were already gone: deleted. */
  readonly clearedRecords: number;
  /** Whether something failed (the CLI then exits 1). */
  readonly failed: boolean;
}

/** What {@link TenantRepair} needs. */
export interface TenantRepairDeps {
  readonly pool: pg.Pool;
  readonly roles: CatalogRoles;
  readonly databases: DatabaseProvisioner;
  /** The operator URL of a registered server. */
  readonly serverUrl: (server: string) => Promise<string>;
}

const q = pg.escapeIdentifier;

/** Runs `fn` with a client on `url`, then closes it. */
const onUrl = <T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> =>
  withClient(url, fn, 'tenantry-repair');

/**
 * Finds and removes what a process killed during a catalog change can leave behind (see
 * {@link findOrphans}), and brings database tenants that missed a declared table up to the
 * registry.
 */
export class TenantRepair {
  readonly #d: TenantRepairDeps;

  constructor(deps: TenantRepairDeps) {
    this.#d = deps;
  }

  /** Repairs (or with `dryRun` only reports) every registered server. */
  async run(options: RepairOptions = {}): Promise<RepairReport> {
    const dryRun = options.dryRun === true;
    const { rows: servers } = await this.#d.pool.query<{ name: string }>(
      'SELECT name FROM tenantry.server ORDER BY name <> $1, name',
      ['main'],
    );
    const known = await knownObjects(this.#d.pool);
    const actions: RepairAction[] = [];
    for (const { name } of servers) {
      const orphans =
        name === 'main'
          ? await findOrphans(this.#d.pool, this.#d.roles, { name, db: this.#d.pool }, known)
          : await onUrl(await this.#d.serverUrl(name), (db) =>
              findOrphans(this.#d.pool, this.#d.roles, { name, db }, known),
            );
      if (dryRun) {
        actions.push(
          ...orphans.map((o) => ({ ...o, outcome: o.inProgress ? 'skipped' : 'would remove' }) as const),
        );
      } else {
        actions.push(...(await this.#remove(name, orphans)));
      }
    }
    const clearedRecords = dryRun || !known.records ? 0 : await this.#clearRecords();
    const staleDatabases = await this.#staleDatabases();
    let syncFailed = false;
    if (!dryRun && staleDatabases.length > 0) {
      syncFailed = await this.#d.databases.syncAll().then(
        () => false,
        () => true,
      );
    }
    return {
      dryRun,
      orphans: actions,
      staleDatabases,
      clearedRecords,
      failed: syncFailed || actions.some((a) => a.outcome === 'failed'),
    };
  }

  /**
   * Removes the objects of recorded creations and drops on `server` whose process died (their
   * tenant lock is free): a half-made clone can hold on to its template, which would then
   * refuse to be rebuilt. Cheap (one indexed read when there is nothing to do); run before
   * each database tenant is created, so the service recovers without an operator.
   */
  async finishRecorded(server: string): Promise<void> {
    const { rows } = await this.#d.pool.query(
      'SELECT 1 FROM tenantry.tenant_object_intent WHERE server = $1 LIMIT 1',
      [server],
    );
    if (rows.length === 0) return;
    const orphans =
      server === 'main'
        ? await findOrphans(this.#d.pool, this.#d.roles, { name: server, db: this.#d.pool }, undefined, {
            recordsOnly: true,
          })
        : await onUrl(await this.#d.serverUrl(server), (db) =>
            findOrphans(this.#d.pool, this.#d.roles, { name: server, db }, undefined, { recordsOnly: true }),
          );
    await this.#remove(server, orphans);
  }

  /** Removes `orphans` of one server: databases first, then roles (members first), then schemas. */
  async #remove(server: string, orphans: readonly OrphanObject[]): Promise<RepairAction[]> {
    const actions: RepairAction[] = [];
    const order = { database: 0, role: 1, schema: 2 } as const;
    const sorted = [...orphans].sort(
      (a, b) =>
        order[a.kind] - order[b.kind] || b.name.length - a.name.length || a.name.localeCompare(b.name),
    );
    const serverUrl = await this.#d.serverUrl(server);
    const lock = await this.#d.pool.connect();
    try {
      for (const orphan of sorted) {
        if (orphan.inProgress) {
          actions.push({ ...orphan, outcome: 'skipped' });
          continue;
        }
        // The lock of its tenant: a process creating or dropping it right now holds it.
        const { rows } = await lock.query<{ got: boolean }>(
          'SELECT pg_try_advisory_lock($1, hashtext($2)) AS got',
          [TENANT_OBJECTS_LOCK, uuidOf(orphan.tenant)],
        );
        if (!rows[0]?.got) {
          actions.push({ ...orphan, outcome: 'skipped' });
          continue;
        }
        try {
          // Under the lock, again: its tenant may have been committed meanwhile.
          const { rows: tenant } = await lock.query(
            "SELECT 1 FROM tenantry.tenant WHERE uuid = NULLIF($1, '')::uuid",
            [orphan.tenant],
          );
          if (tenant.length > 0) continue;
          await this.#drop(server, serverUrl, orphan);
          if (orphan.evidence === 'record') {
            await lock.query(
              'DELETE FROM tenantry.tenant_object_intent WHERE server = $1 AND kind = $2 AND name = $3',
              [server, orphan.kind, orphan.name],
            );
            if (orphan.kind === 'database') {
              await lock.query('DELETE FROM tenantry.provisioned_database WHERE database_name = $1', [
                orphan.name,
              ]);
            }
          }
          actions.push({ ...orphan, outcome: 'removed' });
        } catch (error) {
          actions.push({
            ...orphan,
            outcome: 'failed',
            error: error instanceof Error ? error.message : String(error),
          });
        } finally {
          await lock.query('SELECT pg_advisory_unlock($1, hashtext($2))', [
            TENANT_OBJECTS_LOCK,
            uuidOf(orphan.tenant),
          ]);
        }
      }
    } finally {
      lock.release();
    }
    return actions;
  }

  /** Drops one orphan: a database (ending its sessions), a role (what it owns first), a schema. */
  async #drop(server: string, serverUrl: string, orphan: OrphanObject): Promise<void> {
    if (orphan.kind === 'schema') {
      await this.#d.pool.query(longQuery(`DROP SCHEMA IF EXISTS ${q(orphan.name)} CASCADE`));
      return;
    }
    if (orphan.kind === 'database') {
      await onUrl(serverUrl, (db) => db.query(`DROP DATABASE IF EXISTS ${q(orphan.name)} WITH (FORCE)`));
      return;
    }
    // A role's privileges and objects in the catalog database (shared and schema tenants) or in
    // the server's default database; its sessions end first.
    const drop = async (db: pg.ClientBase | pg.Pool) => {
      await db.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1', [
        orphan.name,
      ]);
      const { rowCount } = await db.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [orphan.name]);
      if (!rowCount) return;
      await db.query(`DROP OWNED BY ${q(orphan.name)}`);
      await db.query(`DROP ROLE IF EXISTS ${q(orphan.name)}`);
    };
    if (server === 'main') await drop(this.#d.pool);
    else await onUrl(serverUrl, drop);
  }

  /** Deletes records whose tenant exists or whose objects are gone (nothing left to do). */
  async #clearRecords(): Promise<number> {
    const { rows: records } = await this.#d.pool.query<{ server: string; kind: string; name: string }>(
      'SELECT server, kind, name FROM tenantry.tenant_object_intent ORDER BY server',
    );
    let cleared = 0;
    const byServer = new Map<string, { kind: string; name: string }[]>();
    for (const r of records) byServer.set(r.server, [...(byServer.get(r.server) ?? []), r]);
    for (const [server, list] of byServer) {
      const present = await this.#present(
        server,
        list.map((r) => r.name),
      );
      const gone = list.filter((r) => !present.has(`${r.kind}:${r.name}`));
      if (gone.length === 0) continue;
      // Only records no live process holds the tenant lock for.
      const { rowCount } = await this.#d.pool.query(
        `DELETE FROM tenantry.tenant_object_intent i
         WHERE i.server = $1 AND (i.kind, i.name::text) IN (SELECT * FROM unnest($2::text[], $3::text[]))
           AND NOT EXISTS (SELECT 1 FROM pg_locks l
                           WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
                             AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                             AND l.classid = $4::bigint::oid
                             AND l.objid = (hashtext(i.tenant_uuid::text)::bigint & 4294967295)::oid)`,
        [server, gone.map((r) => r.kind), gone.map((r) => r.name), TENANT_OBJECTS_LOCK],
      );
      cleared += rowCount ?? 0;
    }
    return cleared;
  }

  /** Which of `names` exist on `server` (as `kind:name`). */
  async #present(server: string, names: readonly string[]): Promise<Set<string>> {
    const sql = `SELECT 'database' AS kind, datname::text AS name FROM pg_database WHERE datname = ANY($1::name[])
                 UNION ALL SELECT 'role', rolname::text FROM pg_roles WHERE rolname = ANY($1::name[])`;
    const read = (db: pg.ClientBase | pg.Pool) => db.query<{ kind: string; name: string }>(sql, [[...names]]);
    const { rows } =
      server === 'main' ? await read(this.#d.pool) : await onUrl(await this.#d.serverUrl(server), read);
    return new Set(rows.map((r) => `${r.kind}:${r.name}`));
  }

  /** Database tenants whose database lacks a registered multi-tenant table. */
  async #staleDatabases(): Promise<string[]> {
    const { rows: tenants } = await this.#d.pool.query<{
      name: string;
      server: string;
      database_name: string;
    }>(
      `SELECT name, server, database_name FROM tenantry.tenant
       WHERE isolation = 'database' AND database_name IS NOT NULL ORDER BY id`,
    );
    if (tenants.length === 0) return [];
    const { rows: tables } = await this.#d.pool.query<{ qualified: string }>(
      `SELECT format('%I.%I', schema_name, table_name) AS qualified FROM tenantry.registered_table
       WHERE kind = 'multi_tenant' ORDER BY 1`,
    );
    const stale: string[] = [];
    for (const tenant of tenants) {
      const url = withDatabase(await this.#d.serverUrl(tenant.server), tenant.database_name);
      const missing = await onUrl(url, async (db) => {
        const { rows } = await db.query<{ n: number }>(
          'SELECT count(*)::int AS n FROM unnest($1::text[]) t WHERE to_regclass(t) IS NULL',
          [tables.map((t) => t.qualified)],
        );
        return (rows[0]?.n ?? 0) > 0;
      }).catch(() => true);
      if (missing) stale.push(tenant.name);
    }
    return stale;
  }
}

/** The uuid text (with dashes) of 32 hex digits, as `hashtext(tenant_uuid::text)` sees it. */
function uuidOf(hex: string): string {
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
