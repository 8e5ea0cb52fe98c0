/**
 * The soak benchmark's library face, a process of its own (so that its memory is measured
 * alone): `withTenant` traffic over random tenants — point and list reads, inserts, updates and
 * small transactions, one read in ten under the tenant's own login role — every returned row
 * checked by the leak oracle. Environment: TENANTRY_SOAK_URL, TENANTRY_MASTER_KEY,
 * TENANTRY_SOAK_BUDGET, TENANTRY_SOAK_IDLE_MS. Ops: `run` (starts the loops), `stats`,
 * `finish` (waits for the loops, answers the summary), `memory`, `stop`.
 */
import { createTenantry, type TenantDb, type Tenantry, type WithTenantOptions } from '../src/index.js';
import { serveChild } from './soak-child.js';
import {
  checkRows,
  FaceStats,
  INSERT_NOTE,
  memorySample,
  TenantPicker,
  UPDATE_CUSTOMER,
  weighted,
  type FaceSummary,
} from './soak-common.js';
import { CUSTOMERS, TRIM_NOTES } from './soak-setup.js';

/** What the parent sends with `run`. */
export interface LibraryRun {
  readonly tenants: readonly string[];
  readonly startMs: number;
  readonly warmupMs: number;
  /** Traffic stops at startMs + durationMs (warm-up included). */
  readonly durationMs: number;
  readonly concurrency: number;
}

type Op = 'point' | 'point-as-tenant' | 'list' | 'notes' | 'insert' | 'update' | 'transaction';
const OPS: readonly (readonly [Op, number])[] = [
  ['point', 26],
  // The same read under the tenant's own login role (`read` permission), as for SQL it wrote.
  ['point-as-tenant', 4],
  ['list', 10],
  ['notes', 15],
  ['insert', 15],
  ['update', 15],
  ['transaction', 15],
];
const READ_AS_TENANT: WithTenantOptions = { identity: 'tenant', permission: 'read' };

async function insertNote(stats: FaceStats, db: TenantDb, tenant: string, body: string): Promise<void> {
  const { rows } = await db.query(INSERT_NOTE, [tenant, body]);
  checkRows(stats, tenant, rows, 'tenant_name', 1);
}

async function runOp(t: Tenantry, stats: FaceStats, picker: TenantPicker<string>, op: Op): Promise<void> {
  const tenant = picker.next();
  const cust = picker.int(1, CUSTOMERS);
  switch (op) {
    case 'point':
    case 'point-as-tenant': {
      const { rows } = await t.withTenant(
        tenant,
        (db) => db.query('SELECT tenant_name, visits FROM customer WHERE cust_num = $1', [cust]),
        op === 'point' ? {} : READ_AS_TENANT,
      );
      checkRows(stats, tenant, rows, 'tenant_name', 1);
      return;
    }
    case 'list': {
      const { rows } = await t.withTenant(tenant, (db) =>
        db.query('SELECT tenant_name, name FROM customer ORDER BY cust_num'),
      );
      checkRows(stats, tenant, rows, 'tenant_name', CUSTOMERS);
      return;
    }
    case 'notes': {
      const { rows } = await t.withTenant(tenant, (db) =>
        db.query('SELECT tenant_name, body FROM note ORDER BY created_at DESC LIMIT 10'),
      );
      checkRows(stats, tenant, rows, 'tenant_name');
      return;
    }
    case 'insert':
      await t.withTenant(tenant, async (db) => {
        await insertNote(stats, db, tenant, 'library insert');
        await db.query(TRIM_NOTES);
      });
      return;
    case 'update': {
      const { rows } = await t.withTenant(tenant, (db) => db.query(UPDATE_CUSTOMER, [cust]));
      checkRows(stats, tenant, rows, 'tenant_name', 1);
      return;
    }
    case 'transaction':
      await t.withTenant(tenant, async (db) => {
        await db.transaction(async (tx) => {
          const updated = await tx.query(UPDATE_CUSTOMER, [cust]);
          checkRows(stats, tenant, updated.rows, 'tenant_name', 1);
          await insertNote(stats, tx, tenant, 'library transaction');
          const notes = await tx.query('SELECT tenant_name FROM note ORDER BY created_at DESC LIMIT 5');
          checkRows(stats, tenant, notes.rows, 'tenant_name', 1);
        });
        await db.query(TRIM_NOTES);
      });
      return;
  }
}

async function drive(t: Tenantry, stats: FaceStats, run: LibraryRun): Promise<void> {
  const deadline = run.startMs + run.durationMs;
  await Promise.all(
    Array.from({ length: run.concurrency }, async (_, worker) => {
      const picker = new TenantPicker(run.tenants, 1000 + worker);
      while (Date.now() < deadline) {
        const op = weighted(OPS, picker.random());
        await stats.time(op, () => runOp(t, stats, picker, op));
      }
    }),
  );
}

serveChild(async () => {
  const tenantry = await createTenantry({
    databaseUrl: process.env.TENANTRY_SOAK_URL ?? '',
    masterKey: process.env.TENANTRY_MASTER_KEY ?? '',
    install: false,
    pool: {
      budget: Number(process.env.TENANTRY_SOAK_BUDGET ?? '24'),
      idleTimeoutMs: Number(process.env.TENANTRY_SOAK_IDLE_MS ?? '30000'),
    },
  });
  let stats: FaceStats | undefined;
  let running: Promise<void> | undefined;
  const summary = (): FaceSummary => {
    if (!stats) throw new Error('not running');
    return stats.summary();
  };
  return {
    info: {},
    handlers: {
      run: (arg) => {
        const run = arg as LibraryRun;
        const face = new FaceStats('library', run.startMs, run.warmupMs);
        stats = face;
        running = drive(tenantry, face, run);
        return Promise.resolve(null);
      },
      stats: () => Promise.resolve(summary()),
      finish: async () => {
        await running;
        return summary();
      },
      memory: (arg) => Promise.resolve(memorySample((arg as { gc?: boolean } | undefined)?.gc === true)),
      pools: () => Promise.resolve(tenantry.poolStats()),
      stop: async () => {
        await running;
        await tenantry.close();
        return null;
      },
    },
  };
});
