import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenantry, type Tenantry } from '../../src/index.js';
import { ChildProcess } from './child.js';
import { ISOLATIONS, eventually, runtimeFixture, type RuntimeFixture } from './helpers.js';

let f: RuntimeFixture;
let t: Tenantry;

beforeAll(async () => {
  f = await runtimeFixture('rt_crash');
  t = f.tenantry;
});

afterAll(async () => {
  await f?.tenantry.close();
});

/** A worker process whose `crashy` handler writes its note, says so, and then hangs. */
const CHILD = `
const t = await lib.createTenantry({ databaseUrl: process.env.URL, masterKey: process.env.KEY, install: false });
t.jobs.define('crashy', async (payload, ctx) => {
  await ctx.db.query('INSERT INTO note (id, body) VALUES ($1, $2)', [payload.id, 'child, attempt ' + ctx.attempt]);
  say({ started: payload.id, tenant: ctx.tenant.name, attempt: ctx.attempt });
  await new Promise(() => {});
});
await t.jobs.start({ concurrency: 4, leaseMs: 1500, pollMs: 50 });
say({ ready: true });
`;

describe('crash recovery', () => {
  it('a worker killed with SIGKILL mid-job: the job runs again, exactly once to completion', async () => {
    for (const [i, isolation] of ISOLATIONS.entries()) {
      await t.withTenant(f.tenants[isolation].homeDepot, () => t.jobs.enqueue('crashy', { id: 500 + i }));
    }
    const child = new ChildProcess(CHILD, { URL: f.url, KEY: f.key });
    try {
      expect(await child.next()).toEqual({ ready: true });
      const started = [await child.next(), await child.next(), await child.next()];
      expect(started.map((s) => (s as { attempt: number }).attempt)).toEqual([1, 1, 1]);
    } finally {
      await child.kill('SIGKILL');
    }
    const runs: string[] = [];
    t.jobs.define('crashy', async (payload: { id: number }, ctx) => {
      runs.push(`${ctx.tenant.name}#${ctx.attempt}`);
      await ctx.db.query('INSERT INTO note (id, body) VALUES ($1, $2)', [
        payload.id,
        `parent, attempt ${ctx.attempt}`,
      ]);
    });
    const worker = await t.jobs.start({ leaseMs: 1500, pollMs: 50 });
    try {
      await eventually(() => runs.length === 3, 15_000, 'the jobs to run again once their leases expired');
      await new Promise((resolve) => setTimeout(resolve, 500));
    } finally {
      await worker.stop();
    }
    expect(runs.sort()).toEqual(ISOLATIONS.map((i) => `${f.tenants[i].homeDepot.name}#2`).sort());
    for (const [i, isolation] of ISOLATIONS.entries()) {
      const tenant = f.tenants[isolation].homeDepot;
      // The dead run's insert was rolled back with its connection; the second run committed once.
      const { rows } = await t.withTenant(tenant, (db) =>
        db.query('SELECT id, body FROM note WHERE id >= 500'),
      );
      expect(rows).toEqual([{ id: String(500 + i), body: 'parent, attempt 2' }]);
      expect(await t.jobs.list({ tenant: tenant.id })).toEqual([]);
    }
  }, 60_000);

  it('a long job keeps its lease while its worker lives: no other worker takes it', async () => {
    const other = await createTenantry({ databaseUrl: f.url, masterKey: f.key, install: false });
    try {
      const runs: string[] = [];
      const handler = (who: string) => async (_payload: unknown, ctx: { attempt: number }) => {
        runs.push(`${who}#${ctx.attempt}`);
        await new Promise((resolve) => setTimeout(resolve, 2500));
      };
      t.jobs.define('long', handler('here'));
      other.jobs.define('long', handler('there'));
      await t.withTenant(f.tenants.schema.lowes, () => t.jobs.enqueue('long'));
      const workers = [
        await t.jobs.start({ leaseMs: 900, pollMs: 50 }),
        await other.jobs.start({ leaseMs: 900, pollMs: 50 }),
      ];
      try {
        await eventually(
          async () =>
            runs.length === 1 && (await t.jobs.list({ tenant: f.tenants.schema.lowes.id })).length === 0,
          10_000,
          'the long job',
        );
      } finally {
        await Promise.all(workers.map((w) => w.stop()));
      }
      expect(runs).toHaveLength(1);
      expect(runs[0]).toMatch(/#1$/);
    } finally {
      await other.close();
    }
  });
});
