import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenantry, getTenant, type Tenantry } from '../../src/index.js';
import { withClient } from '../helpers/db.js';
import { ISOLATIONS, eventually, runtimeFixture, type RuntimeFixture } from './helpers.js';

let f: RuntimeFixture;
let t: Tenantry;

beforeAll(async () => {
  f = await runtimeFixture('rt_jobs_life');
  t = f.tenantry;
  await t.jobs.start({ pollMs: 50, concurrency: 4 });
});

afterAll(async () => {
  await f?.tenantry.close();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('jobs through the tenant lifecycle and worker stops', () => {
  it("a disabled tenant's jobs wait, and run once it is enabled", async () => {
    const ran: string[] = [];
    t.jobs.define('paused', async () => void ran.push(getTenant().name));
    for (const isolation of ISOLATIONS) {
      const { lowes } = f.tenants[isolation];
      await t.withTenant(lowes, () => t.jobs.enqueue('paused', null, { delayMs: 500 }));
      await t.tenants.disable(lowes.id);
    }
    await sleep(1000);
    expect(ran).toEqual([]);
    for (const isolation of ISOLATIONS) await t.tenants.enable(f.tenants[isolation].lowes.id);
    await eventually(() => ran.length === 3, 10_000, 'the paused jobs');
  });

  it('a job whose tenant is disabled while it runs goes back to the queue without losing an attempt', async () => {
    // (a transactional run would finish: a disabled tenant's open transactions finish; this one is not)
    const { lowes } = f.tenants.shared;
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const runs: number[] = [];
    t.jobs.define(
      'interrupted',
      async (_p, ctx) => {
        runs.push(ctx.attempt);
        if (runs.length === 1) await gate;
        await ctx.db.query('INSERT INTO note (id, body) VALUES (300, $1)', [`attempt ${ctx.attempt}`]);
      },
      { transactional: false },
    );
    await t.withTenant(lowes, () => t.jobs.enqueue('interrupted'));
    await eventually(() => runs.length === 1, 10_000, 'the job to start');
    await t.tenants.disable(lowes.id);
    release();
    await eventually(
      async () => (await t.jobs.list({ tenant: lowes.id, states: ['queued'] })).length === 1,
      5000,
      'the release',
    );
    const [queued] = await t.jobs.list({ tenant: lowes.id, states: ['queued'] });
    expect(queued?.attempts).toBe(0);
    await t.tenants.enable(lowes.id);
    await eventually(() => runs.length === 2, 10_000, 'the second run');
    expect(runs).toEqual([1, 1]);
  });

  it("a dropped tenant's jobs and signals are removed with it", async () => {
    for (const isolation of ISOLATIONS) {
      const doomed = await t.tenants.create({ name: `Doomed_jobs_${isolation}`, isolation });
      await t.withTenant(doomed, () => t.jobs.enqueueMany('never_defined', [1, 2, 3], { delayMs: 60_000 }));
      await t.tenants.drop(doomed.id, { force: true });
      const { rows } = await t.operator.query<{ jobs: number; pending: number }>(
        `SELECT (SELECT count(*)::int FROM tenantry.job WHERE tenant_id = $1) AS jobs,
                (SELECT count(*)::int FROM tenantry.job_pending WHERE tenant_id = $1) AS pending`,
        [doomed.id],
      );
      expect(rows[0]).toEqual({ jobs: 0, pending: 0 });
      if (doomed.schemaName) {
        const { rows: schema } = await t.operator.query('SELECT to_regnamespace($1) AS s', [
          doomed.schemaName,
        ]);
        expect(schema[0]).toEqual({ s: null });
      }
      if (doomed.databaseName) {
        await withClient(f.url, async (client) => {
          const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [
            doomed.databaseName,
          ]);
          expect(rowCount).toBe(0);
        });
      }
    }
  });

  it('stops gracefully: the running job finishes, waiting ones go back; after the timeout a run is cut off and rolled back', async () => {
    const other = await createTenantry({ databaseUrl: f.url, masterKey: f.key, install: false });
    const { homeDepot } = f.tenants.schema;
    try {
      const started: number[] = [];
      let hang = false;
      other.jobs.define('graceful', async (n: number, ctx) => {
        started.push(n);
        await ctx.db.query('INSERT INTO note (id, body) VALUES ($1, $2)', [400 + n, 'graceful']);
        if (hang) await new Promise((resolve) => setTimeout(resolve, 1500));
        else await sleep(200);
      });
      await other.withTenant(homeDepot.id, () => other.jobs.enqueueMany('graceful', [1, 2, 3]));
      const worker = await other.jobs.start({ concurrency: 1, pollMs: 50 });
      await eventually(() => started.length === 1, 10_000, 'the first job');
      await worker.stop({ timeoutMs: 5000 });
      expect(started).toEqual([1]);
      const graceful = async () =>
        (await other.jobs.list({ tenant: homeDepot.id })).filter((j) => j.name === 'graceful');
      const left = await graceful();
      expect(left.map((j) => [j.payload, j.state, j.attempts])).toEqual([
        [2, 'queued', 0],
        [3, 'queued', 0],
      ]);
      hang = true;
      const second = await other.jobs.start({ concurrency: 1, pollMs: 50 });
      await eventually(() => started.length === 2, 10_000, 'the second job');
      await second.stop({ timeoutMs: 100 });
      await sleep(1600); // the cut-off run ends and cannot complete: its insert is rolled back
      const notes = await other.withTenant(homeDepot.id, (db) =>
        db.query('SELECT id FROM note WHERE id > 400 ORDER BY id'),
      );
      expect(notes.rows).toEqual([{ id: '401' }]);
      expect((await graceful()).map((j) => j.state)).toEqual(['queued', 'queued']);
    } finally {
      await other.close();
    }
  });
});
