import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getTenant, isTenantryError, type TenantEvent, type Tenantry } from '../../src/index.js';
import { ISOLATIONS, eventually, runtimeFixture, type RuntimeFixture } from './helpers.js';

let f: RuntimeFixture;
let t: Tenantry;

beforeAll(async () => {
  f = await runtimeFixture('rt_events');
  t = f.tenantry;
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

/** Collects what a subscriber receives, per tenant name: `position:type` (and the context's tenant). */
function collector() {
  const got = new Map<string, string[]>();
  const handler = async (event: TenantEvent) => {
    if (getTenant().id !== event.tenant.id) throw new Error('handler ran outside its tenant');
    got.set(event.tenant.name, [...(got.get(event.tenant.name) ?? []), `${event.position}:${event.type}`]);
  };
  return { got, handler, count: () => [...got.values()].reduce((n, l) => n + l.length, 0) };
}

describe.each(ISOLATIONS)('the event outbox of %s tenants', (isolation) => {
  it('delivers each tenant its own events in order, positions 1, 2, 3 … per tenant', async () => {
    const { homeDepot, lowes } = f.tenants[isolation];
    for (const type of ['a', 'b', 'c']) await t.withTenant(homeDepot, () => t.events.publish(type, { type }));
    const first = await t.withTenant(lowes, () => t.events.publish('x'));
    expect(first.position).toBe(1n); // nothing to infer from another tenant's volume
    const c = collector();
    const sub = t.events.subscribe(`order_${isolation}`, c.handler, { pollMs: 50 });
    try {
      await eventually(
        () => c.got.get(homeDepot.name)?.length === 3 && c.got.get(lowes.name)?.length === 1,
        10_000,
        'the events',
      );
    } finally {
      await sub.stop();
    }
    expect(c.got.get(homeDepot.name)).toEqual(['1:a', '2:b', '3:c']);
    expect(c.got.get(lowes.name)).toEqual(['1:x']);
  });

  it('positions follow commit order: a later publish waits for an earlier open one', async () => {
    const { homeDepot } = f.tenants[isolation];
    let releaseA: () => void = () => undefined;
    const holdA = new Promise<void>((resolve) => (releaseA = resolve));
    let aPublished: () => void = () => undefined;
    const aHasPosition = new Promise<void>((resolve) => (aPublished = resolve));
    const timeline: string[] = [];
    const a = t.withTenant(homeDepot, (db) =>
      db.transaction(async () => {
        const ref = await t.events.publish('first');
        aPublished();
        await holdA;
        timeline.push(`A commits ${ref.position}`);
        return ref.position;
      }),
    );
    await aHasPosition;
    const b = t.withTenant(homeDepot, async () => {
      const ref = await t.events.publish('second');
      timeline.push(`B published ${ref.position}`);
      return ref.position;
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(timeline).toEqual([]); // B waits on A's position lock
    releaseA();
    const [pa, pb] = await Promise.all([a, b]);
    expect(pb).toBe(pa + 1n);
    expect(timeline).toEqual([`A commits ${pa}`, `B published ${pb}`]);
  });

  it('a rolled-back publish leaves no event and no gap', async () => {
    const { lowes } = f.tenants[isolation];
    await t
      .withTenant(lowes, (db) =>
        db.transaction(async () => {
          await t.events.publish('ghost');
          throw new Error('roll back');
        }),
      )
      .catch(() => undefined);
    const next = await t.withTenant(lowes, () => t.events.publish('after'));
    expect(next.position).toBe(2n);
  });
});

describe('event subscribers', () => {
  it('deliver at least once: a failed handler gets the event again; a new subscription resumes after the acknowledged position', async () => {
    const tenant = f.tenants.schema.lowes;
    const base = (await t.withTenant(tenant, () => t.events.publish('r1'))).position;
    await t.withTenant(tenant, () => t.events.publish('r2'));
    let failOnce = true;
    const seen: string[] = [];
    const sub = t.events.subscribe(
      'resumable',
      async (e) => {
        if (e.tenant.id !== tenant.id || e.position < base) return;
        seen.push(e.type);
        if (e.type === 'r2' && failOnce) {
          failOnce = false;
          throw new Error('transient');
        }
      },
      { pollMs: 50 },
    );
    await eventually(() => seen.filter((s) => s === 'r2').length === 2, 10_000, 'the redelivery');
    await sub.stop();
    expect(seen).toEqual(['r1', 'r2', 'r2']);
    await t.withTenant(tenant, () => t.events.publish('r3'));
    const resumed: string[] = [];
    const again = t.events.subscribe(
      'resumable',
      async (e) => void (e.tenant.id === tenant.id && resumed.push(e.type)),
      { pollMs: 50 },
    );
    try {
      await eventually(() => resumed.includes('r3'), 10_000, 'the resumed subscriber');
    } finally {
      await again.stop();
    }
    expect(resumed).toEqual(['r3']);
  });

  it('a handler that outlasts the lease keeps the tenant: no other subscriber delivers meanwhile', async () => {
    const tenant = f.tenants.shared.lowes;
    const base = (await t.withTenant(tenant, () => t.events.publish('slow1'))).position;
    await t.withTenant(tenant, () => t.events.publish('slow2'));
    const log: string[] = [];
    let active = 0;
    let overlapped = false;
    const handler = (who: string) => async (e: TenantEvent) => {
      if (e.tenant.id !== tenant.id || e.position < base) return;
      active++;
      if (active > 1) overlapped = true;
      log.push(`${who}:${e.type}`);
      // Three leases long.
      await new Promise((resolve) => setTimeout(resolve, 900));
      active--;
    };
    const options = { pollMs: 50, leaseMs: 300 };
    const a = t.events.subscribe('long_handler', handler('a'), options);
    const b = t.events.subscribe('long_handler', handler('b'), options);
    try {
      await eventually(() => log.length >= 2, 10_000, 'both events');
      await new Promise((resolve) => setTimeout(resolve, 1_000));
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
    expect(overlapped).toBe(false);
    expect(log.map((entry) => entry.slice(2))).toEqual(['slow1', 'slow2']);
  });

  it("skip disabled tenants until they are enabled, and never show a tenant another tenant's events", async () => {
    const { homeDepot, lowes } = f.tenants.database;
    await t.withTenant(homeDepot, () => t.events.publish('private', { card: '4111' }));
    await t.tenants.disable(homeDepot.id);
    const c = collector();
    const sub = t.events.subscribe('isolation', c.handler, { pollMs: 50 });
    try {
      await eventually(() => (c.got.get(lowes.name)?.length ?? 0) > 0, 10_000, "Lowes' events");
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(c.got.has(homeDepot.name)).toBe(false);
      await t.tenants.enable(homeDepot.id);
      await eventually(
        () => (c.got.get(homeDepot.name) ?? []).some((e) => e.endsWith(':private')),
        10_000,
        'the enabled tenant',
      );
    } finally {
      await sub.stop();
    }
    for (const isolation of ISOLATIONS) {
      const other = f.tenants[isolation].lowes;
      const table = isolation === 'schema' ? `${other.schemaName}.tenantry_event` : 'tenantry.event';
      const { rows } = await t.withTenant(other, (db) =>
        db.query<{ type: string }>(`SELECT type FROM ${table}`),
      );
      expect(rows.map((r) => r.type)).not.toContain('private');
      // Nor forge one into another tenant's outbox, nor move its position.
      const victim = f.tenants[isolation].homeDepot;
      const head = isolation === 'schema' ? `${other.schemaName}.tenantry_event_head` : 'tenantry.event_head';
      await t.withTenant(other, async (db) => {
        expect(
          await codeOf(
            db.query(`INSERT INTO ${table} (tenant_id, position, type) VALUES ($1, 999, 'forged')`, [
              victim.id,
            ]),
          ),
        ).toBe('42501');
        expect(
          (await db.query(`UPDATE ${head} SET position = 0 WHERE tenant_id = $1`, [victim.id])).rowCount,
        ).toBe(0);
      });
      if (isolation !== 'shared') {
        expect(
          await codeOf(
            t.withTenant(other, (db) => db.query(`SELECT * FROM ${table}`), { identity: 'tenant' }),
          ),
        ).toBe('42501');
      }
    }
  });

  it('rejects bad input and publishing outside a tenant', async () => {
    expect(await codeOf(t.events.publish('x'))).toBe('TENANTRY_ERR_NO_TENANT');
    const tenant = f.tenants.shared.homeDepot;
    expect(await codeOf(t.withTenant(tenant, () => t.events.publish('no spaces')))).toBe(
      'TENANTRY_ERR_INVALID_ARGUMENT',
    );
    expect(await codeOf(t.withTenant(tenant, () => t.events.publish('x', { n: 1n })))).toBe(
      'TENANTRY_ERR_INVALID_ARGUMENT',
    );
    expect(
      await codeOf(Promise.resolve().then(() => t.events.subscribe('bad name', async () => undefined))),
    ).toBe('TENANTRY_ERR_INVALID_ARGUMENT');
  });
});
