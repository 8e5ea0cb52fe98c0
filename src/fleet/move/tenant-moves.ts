import type { TenantRef } from '../../catalog/index.js';
import { TenantryError } from '../../errors.js';
import { removeCapture } from './capture.js';
import { dropDatabaseCopy, dropRoles, dropSchemaCopy, moveCredentialOwner } from './cutover.js';
import type { MoverDeps } from './deps.js';
import { MoveRun } from './mover.js';
import { lockMove, planMove } from './plan.js';
import { placementUrl, reusesRole, type Placement } from './placement.js';
import { deleteTenantRows, prepareSession } from './rows.js';
import { placementTables } from './tables.js';
import type { MoveOptions, MoveReport, MoveRow } from './types.js';
import { withClient } from '../../isolation/database.js';

interface StoredRow {
  tenant_id: number;
  source: Placement;
  target: Placement;
  phase: MoveRow['phase'];
  applied: string;
  stats: Record<string, unknown>;
}

function toRow(r: StoredRow): MoveRow {
  return {
    tenantId: r.tenant_id,
    source: r.source,
    target: r.target,
    phase: r.phase,
    applied: r.applied,
    stats: r.stats,
  };
}

/**
 * Online tenant moves between isolation models and servers (docs/fleet.md, "Online move"): a
 * snapshot copy while the tenant keeps writing, trigger-captured changes caught up, a short
 * write pause at the cut-over (fenced in the database), checksums compared, the catalog switched
 * in one transaction, then the old copy dropped. Every phase is recorded in the catalog: a rerun
 * after a crash (even kill -9) resumes, {@link abort} rolls back.
 */
export class TenantMoves {
  readonly #deps: MoverDeps;

  constructor(deps: MoverDeps) {
    this.#deps = deps;
  }

  async #stored(tenantId: number): Promise<MoveRow | undefined> {
    const { rows } = await this.#deps.admin.query<StoredRow>(
      'SELECT tenant_id, source, target, phase, applied::text AS applied, stats FROM tenantry.tenant_move WHERE tenant_id = $1',
      [tenantId],
    );
    return rows[0] ? toRow(rows[0]) : undefined;
  }

  /**
   * Moves `ref` to `options.to` (on `options.server`), or resumes its unfinished move. Throws
   * `TENANTRY_ERR_MOVE_UNSUPPORTED` (schema tenants, groups, own columns or views),
   * `TENANTRY_ERR_MOVE_IN_PROGRESS` (another process moves it, or an unfinished move has another
   * target), `TENANTRY_ERR_MOVE_TIMEOUT`, `TENANTRY_ERR_MOVE_VERIFY_FAILED` (the tenant then
   * stays where it was; rerun), `TENANTRY_ERR_SERVER_NOT_FOUND`.
   */
  async move(ref: TenantRef, options: MoveOptions): Promise<MoveReport> {
    const tenant = await this.#deps.showTenant(ref);
    const release = await lockMove(this.#deps.admin, tenant);
    try {
      let row = await this.#stored(tenant.id);
      if (row) {
        const server = options.server ?? 'main';
        if (
          row.phase !== 'cleanup' &&
          (row.target.isolation !== options.to || row.target.server !== server)
        ) {
          throw new TenantryError('MOVE_IN_PROGRESS', {
            tenant: tenant.name,
            problem: `an unfinished move to ${row.target.isolation} on ${row.target.server}`,
          });
        }
      } else {
        const planned = await planMove(this.#deps, tenant, options);
        await this.#deps.admin.query(
          `INSERT INTO tenantry.tenant_move (tenant_id, source, target, phase) VALUES ($1, $2, $3, 'prepare')`,
          [tenant.id, JSON.stringify(planned.source), JSON.stringify(planned.target)],
        );
        row = { ...planned, phase: 'prepare', applied: '0', stats: {} };
      }
      return await new MoveRun(this.#deps, tenant, row, options).run();
    } finally {
      release();
    }
  }

  /**
   * Rolls back the unfinished move of `ref`: the old copy's triggers and fence go (its writes
   * resume), the new copy is dropped. A move already past its cut-over cannot be rolled back —
   * the tenant lives in its new place — and is finished instead. Throws
   * `TENANTRY_ERR_MOVE_NOT_FOUND`.
   */
  async abort(ref: TenantRef): Promise<'rolled back' | 'finished'> {
    const tenant = await this.#deps.showTenant(ref);
    const release = await lockMove(this.#deps.admin, tenant);
    try {
      const row = await this.#stored(tenant.id);
      if (!row) throw new TenantryError('MOVE_NOT_FOUND', { tenant: tenant.name });
      if (row.phase === 'cleanup') {
        await new MoveRun(this.#deps, tenant, row, { to: row.target.isolation }).run();
        return 'finished';
      }
      const { source, target } = row;
      await withClient(await placementUrl(this.#deps, source), async (db) => {
        await prepareSession(db, tenant.id);
        await removeCapture(db, tenant.id, await placementTables(this.#deps.admin, db, source, target));
      });
      if (target.isolation === 'database') {
        await dropDatabaseCopy(await this.#deps.serverUrl(target.server), target);
      } else {
        await withClient(this.#deps.mainUrl, async (main) => {
          await prepareSession(main, tenant.id);
          if (target.isolation === 'schema') await dropSchemaCopy(main, target);
          else
            await deleteTenantRows(
              main,
              tenant.id,
              await placementTables(this.#deps.admin, main, target, source),
              'source',
            );
          // a staged login role of the new copy (never registered, never logged in)
          if (!reusesRole(source, target))
            await dropRoles(main, target.isolation === 'schema' ? target.roles : []);
        });
      }
      await this.#deps.credentials.remove(this.#deps.admin, moveCredentialOwner(tenant.id));
      await this.#deps.admin.query('DELETE FROM tenantry.tenant_move WHERE tenant_id = $1', [tenant.id]);
      return 'rolled back';
    } finally {
      release();
    }
  }

  /** The moves under way, with their phase and what they measured so far. */
  async list(): Promise<(MoveRow & { tenant: string })[]> {
    const { rows } = await this.#deps.admin.query<StoredRow & { name: string }>(
      `SELECT m.tenant_id, t.name, m.source, m.target, m.phase, m.applied::text AS applied, m.stats
       FROM tenantry.tenant_move m JOIN tenantry.tenant t ON t.id = m.tenant_id ORDER BY m.started_at`,
    );
    return rows.map((r) => ({ ...toRow(r), tenant: r.name }));
  }
}
