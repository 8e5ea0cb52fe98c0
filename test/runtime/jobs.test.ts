import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getTenant, isTenantryError, type JobInfo, type Tenant, type Tenantry } from '../../src/index.js';
import { ISOLATIONS, eventually, runtimeFixture, type RuntimeFixture } from './helpers.js';

let f: RuntimeFixture;
let t: Tenantry;

beforeAll(async () => {
  f = await runtimeFixture('rt_jobs');
  t = f.tenantry;
  await t.jobs.start({ pollMs: 50, concurrency: 4 });
});

afterAll(async () => {
  await f?.tenantry.close();
});

const codeOf = async (p: Promise<unknown>): Promise<string> =>
  p.then(
    () => 'ok',
    (e: unknown) =>
      isTenantryError(e) ? e.code : e instanceof pg.DatabaseError ? String(e.code) : String(e),
  );

/** The jobs of `tenant`, as its own context lists them. */
const jobsOf = (tenant: Tenant, states?: JobInfo['state'][]): Promise<JobInfo[]> =>
  t.withTenant(tenant, () => t.jobs.list(states ? { states } : {}));

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.each(ISOLATIONS)('jobs of %s tenants', (isolation) => {
  const tenants = () => f.tenants[isolation];

  it("run as their tenant: getTenant(), tenantry.query() and ctx.db see that tenant's rows only", async () => {
    const { homeDepot, lowes } = tenants();
    await t.withTenant(lowes, (db) => db.query("INSERT INTO note (id, body) VALUES (100, 'Lowes only')"));
    const seen: unknown[] = [];
    t.jobs.define(`whoami_${isolation}`, async (payload: { id: number }, ctx) => {
      await ctx.db.query('INSERT INTO note (id, body) VALUES ($1, $2)', [payload.id, 'by the job']);
      // tenantry.query() joins the job's transaction, so it sees the insert above
      const { rows } = await t.query<{ body: string }>('SELECT body FROM note ORDER BY id');
      seen.push({
        context: getTenant().name,
        job: ctx.tenant.name,
        attempt: ctx.attempt,
        bodies: rows.map((r) => r.body),
      });
    });
    const ref = await t.withTenant(homeDepot, () => t.jobs.enqueue(`whoami_${isolation}`, { id: 101 }));
    expect(ref.tenant.id).toBe(homeDepot.id);
    await eventually(() => seen.length === 1, 10_000, 'the job');
    expect(seen[0]).toEqual({
      context: homeDepot.name,
      job: homeDepot.name,
      attempt: 1,
      bodies: ['by the job'],
    });
    expect(await jobsOf(homeDepot)).toEqual([]); // completed jobs are deleted with the handler's commit
  });

  it('an enqueue in a rolled-back transaction never runs; a committed one does', async () => {
    const { homeDepot } = tenants();
    const ran: string[] = [];
    t.jobs.define(`tx_${isolation}`, async (payload: string) => void ran.push(payload));
    await t
      .withTenant(homeDepot, (db) =>
        db.transaction(async () => {
          await t.jobs.enqueue(`tx_${isolation}`, 'rolled back');
          throw new Error('roll back');
        }),
      )
      .catch(() => undefined);
    await t.withTenant(homeDepot, (db) =>
      db.transaction(() => t.jobs.enqueue(`tx_${isolation}`, 'committed')),
    );
    await eventually(() => ran.includes('committed'), 10_000, 'the committed job');
    await sleep(200);
    expect(ran).toEqual(['committed']);
  });

  it('a failing job is retried with back-off, its work rolled back each time, and left failed; retry re-queues it', async () => {
    const { homeDepot } = tenants();
    let fail = true;
    let runs = 0;
    t.jobs.define(
      `flaky_${isolation}`,
      async (_payload, ctx) => {
        runs++;
        await ctx.db.query('INSERT INTO note (id, body) VALUES (200, $1)', [`run ${runs}`]);
        if (fail) throw new Error(`boom ${ctx.attempt}`);
      },
      { maxAttempts: 3, backoff: () => 30 },
    );
    const { id } = await t.withTenant(homeDepot, () => t.jobs.enqueue(`flaky_${isolation}`));
    await eventually(
      async () => (await jobsOf(homeDepot, ['failed'])).length === 1,
      10_000,
      'the job to fail',
    );
    const [failed] = await jobsOf(homeDepot, ['failed']);
    expect(failed).toMatchObject({
      id,
      state: 'failed',
      attempts: 3,
      maxAttempts: 3,
      lastError: 'Error: boom 3',
    });
    expect(runs).toBe(3);
    const notes = await t.withTenant(homeDepot, (db) => db.query('SELECT * FROM note WHERE id = 200'));
    expect(notes.rowCount).toBe(0);
    fail = false;
    expect(await t.withTenant(homeDepot, () => t.jobs.retry({ id }))).toBe(1);
    await eventually(async () => (await jobsOf(homeDepot)).length === 0, 10_000, 'the retried job');
    const done = await t.withTenant(homeDepot, (db) => db.query('SELECT body FROM note WHERE id = 200'));
    expect(done.rows).toEqual([{ body: 'run 4' }]);
  });

  it('a delayed job waits for its time; a cancelled one never runs', async () => {
    const { homeDepot } = tenants();
    const ran: string[] = [];
    t.jobs.define(`timer_${isolation}`, async (payload: string) => void ran.push(payload));
    const start = Date.now();
    await t.withTenant(homeDepot, () => t.jobs.enqueue(`timer_${isolation}`, 'later', { delayMs: 400 }));
    const doomed = await t.withTenant(homeDepot, () =>
      t.jobs.enqueue(`timer_${isolation}`, 'cancelled', { runAt: new Date(Date.now() + 300) }),
    );
    expect(await t.withTenant(homeDepot, () => t.jobs.cancel({ id: doomed.id }))).toBe(1);
    expect(await codeOf(t.withTenant(homeDepot, () => t.jobs.cancel({ id: doomed.id })))).toBe(
      'TENANTRY_ERR_JOB_NOT_FOUND',
    );
    await eventually(() => ran.length > 0, 10_000, 'the delayed job');
    expect(Date.now() - start).toBeGreaterThanOrEqual(390);
    await sleep(300);
    expect(ran).toEqual(['later']);
    expect((await jobsOf(homeDepot)).map((j) => j.state)).toEqual(['cancelled']);
  });
});

describe('jobs across tenants', () => {
  it("another tenant cannot list, count, cancel or retry a tenant's jobs", async () => {
    for (const isolation of ISOLATIONS) {
      const { homeDepot, lowes } = f.tenants[isolation];
      const job = await t.withTenant(homeDepot, () =>
        t.jobs.enqueue('never_defined', { secret: 1 }, { delayMs: 60_000 }),
      );
      expect((await jobsOf(homeDepot)).map((j) => j.id)).toContain(job.id);
      expect((await jobsOf(lowes)).map((j) => j.id)).not.toContain(job.id);
      expect(await codeOf(t.withTenant(lowes, () => t.jobs.cancel({ id: job.id })))).toBe(
        'TENANTRY_ERR_JOB_NOT_FOUND',
      );
      expect(await codeOf(t.withTenant(lowes, () => t.jobs.retry({ id: job.id })))).toBe(
        'TENANTRY_ERR_JOB_NOT_FOUND',
      );
      // Naming the other tenant explicitly does not help.
      for (const attempt of [
        async () => (await t.jobs.list({ tenant: homeDepot.id })).length,
        () => t.jobs.cancel({ tenant: homeDepot.name, id: job.id }),
        () => t.jobs.retry({ tenant: homeDepot.id, id: job.id }),
      ]) {
        expect(await codeOf(t.withTenant(lowes, attempt))).toBe('TENANTRY_ERR_FORBIDDEN');
      }
      expect((await jobsOf(homeDepot)).find((j) => j.id === job.id)?.state).toBe('queued');
      await t.withTenant(lowes, async (db) => {
        const table = isolation === 'schema' ? `${lowes.schemaName}.tenantry_job` : 'tenantry.job';
        const { rows } = await db.query(
          `SELECT count(*)::int AS n FROM ${table} WHERE name = 'never_defined'`,
        );
        expect(rows[0]).toEqual({ n: 0 });
        expect(
          (await db.query(`UPDATE ${table} SET state = 'cancelled' WHERE id = $1`, [job.id])).rowCount,
        ).toBe(0);
      });
      // SQL a tenant writes (its own login role) cannot reach job tables at all.
      if (isolation !== 'shared') {
        const table = isolation === 'schema' ? `${homeDepot.schemaName}.tenantry_job` : 'tenantry.job';
        expect(
          await codeOf(
            t.withTenant(homeDepot, (db) => db.query(`SELECT * FROM ${table}`), { identity: 'tenant' }),
          ),
        ).toBe('42501');
      }
    }
  });

  it('rejects bad input with TENANTRY_ERR_INVALID_ARGUMENT and refuses to enqueue outside a tenant', async () => {
    const tenant = f.tenants.shared.homeDepot;
    const inTenant = (fn: () => Promise<unknown>) => codeOf(t.withTenant(tenant, fn));
    expect(await codeOf(t.jobs.enqueue('x'))).toBe('TENANTRY_ERR_NO_TENANT');
    expect(await inTenant(() => t.jobs.enqueue('bad name'))).toBe('TENANTRY_ERR_INVALID_ARGUMENT');
    expect(await inTenant(() => t.jobs.enqueue('x', { big: 1n }))).toBe('TENANTRY_ERR_INVALID_ARGUMENT');
    expect(await inTenant(() => t.jobs.enqueue('x', null, { maxAttempts: 0 }))).toBe(
      'TENANTRY_ERR_INVALID_ARGUMENT',
    );
    expect(await inTenant(() => t.jobs.enqueue('x', null, { runAt: new Date('nope') }))).toBe(
      'TENANTRY_ERR_INVALID_ARGUMENT',
    );
    expect(await inTenant(() => t.jobs.cancel({ id: 'not-a-uuid' }))).toBe('TENANTRY_ERR_INVALID_ARGUMENT');
    expect(
      await codeOf(Promise.resolve().then(() => t.jobs.define('whoami_shared', async () => undefined))),
    ).toBe('TENANTRY_ERR_INVALID_ARGUMENT');
    expect(await codeOf(t.jobs.start({ concurrency: 0 }))).toBe('TENANTRY_ERR_INVALID_ARGUMENT');
    // Beyond 2^31 − 1 ms a timer fires every millisecond; a billion slots overflow the claim.
    for (const options of [{ leaseMs: 3e9 }, { pollMs: 3e9 }, { sweepMs: 3e9 }, { concurrency: 1e9 }]) {
      expect(await codeOf(t.jobs.start(options)), JSON.stringify(options)).toBe(
        'TENANTRY_ERR_INVALID_ARGUMENT',
      );
    }
    expect(
      await codeOf(
        Promise.resolve().then(() =>
          t.jobs.define('bad_backoff', async () => undefined, { backoff: 30 as unknown as () => number }),
        ),
      ),
    ).toBe('TENANTRY_ERR_INVALID_ARGUMENT');
  });

  it('a backoff that answers NaN or throws still records the failure (with the default delay)', async () => {
    const tenant = f.tenants.shared.homeDepot;
    for (const [name, backoff] of [
      ['nan_backoff', () => Number.NaN],
      [
        'throwing_backoff',
        () => {
          throw new Error('no delay');
        },
      ],
    ] as const) {
      t.jobs.define(
        name,
        async () => {
          throw new Error(`${name} failed`);
        },
        { maxAttempts: 1, backoff },
      );
      const { id } = await t.withTenant(tenant, () => t.jobs.enqueue(name));
      await eventually(
        async () => (await jobsOf(tenant, ['failed'])).some((j) => j.id === id),
        10_000,
        `${name} to fail`,
      );
      const failed = (await jobsOf(tenant, ['failed'])).find((j) => j.id === id);
      expect(failed?.lastError).toBe(`Error: ${name} failed`);
    }
  });
});
