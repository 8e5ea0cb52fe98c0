import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenantry, isTenantryError, type Tenantry } from '../../src/index.js';
import { ChildProcess } from './child.js';
import { ISOLATIONS, runtimeFixture, type RuntimeFixture } from './helpers.js';

let f: RuntimeFixture;
let t: Tenantry;

beforeAll(async () => {
  f = await runtimeFixture('rt_ids');
  t = f.tenantry;
  // A table whose ids come from tenantry.next_id() in SQL; registered after the tenants exist,
  // so schema and database tenants get their copies (with the default) from the registry.
  await t.operator.query(
    `CREATE TABLE public.ticket (tenant_id integer NOT NULL, id bigint NOT NULL DEFAULT tenantry.next_id('ticket'),
       subject text NOT NULL, PRIMARY KEY (tenant_id, id))`,
  );
  await t.tables.multiTenant('public.ticket');
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

describe.each(ISOLATIONS)('id generators of %s tenants', (isolation) => {
  it('hand out 1, 2, 3 … per tenant and entity; another tenant starts at 1 whatever the first used', async () => {
    const { homeDepot, lowes } = f.tenants[isolation];
    const first = await t.withTenant(homeDepot, async () => {
      const ids: bigint[] = [];
      for (let i = 0; i < 250; i++) ids.push(await t.ids.next('order', { blockSize: 100 }));
      return ids;
    });
    expect(first).toEqual(Array.from({ length: 250 }, (_, i) => BigInt(i + 1)));
    expect(await t.withTenant(lowes, () => t.ids.next('order'))).toBe(1n);
    expect(await t.withTenant(homeDepot, () => t.ids.next('invoice'))).toBe(1n);
    // 250 ids took three blocks of 100: SQL continues after the third block.
    const { rows } = await t.withTenant(homeDepot, (db) => db.query("SELECT tenantry.next_id('order') AS v"));
    expect(rows[0]).toEqual({ v: '301' });
  });

  it('tenantry.next_id() is a column default drawing from the same counter: no id is handed out twice', async () => {
    const { homeDepot, lowes } = f.tenants[isolation];
    await t.withTenant(homeDepot, async (db) => {
      const fromTs = [
        await t.ids.next('ticket', { blockSize: 5 }),
        await t.ids.next('ticket', { blockSize: 5 }),
      ];
      for (const id of fromTs)
        await db.query('INSERT INTO ticket (id, subject) VALUES ($1, $2)', [id, 'from TS']);
      for (let i = 0; i < 3; i++) await db.query("INSERT INTO ticket (subject) VALUES ('from SQL')");
      fromTs.push(await t.ids.next('ticket', { blockSize: 5 }));
      await db.query('INSERT INTO ticket (id, subject) VALUES ($1, $2)', [fromTs[2], 'from TS']);
      const { rows } = await db.query<{ id: string }>('SELECT id FROM ticket ORDER BY id');
      // TS had 1–5 in memory, so SQL went on at 6; TS then handed out 3 from its block.
      expect(rows.map((r) => r.id)).toEqual(['1', '2', '3', '6', '7', '8']);
    });
    // A rolled-back default gives its id back; a TS block never is (it committed on its own).
    await t
      .withTenant(lowes, (db) =>
        db.transaction(async (tx) => {
          await t.ids.next('ticket', { blockSize: 10 });
          await tx.query("INSERT INTO ticket (subject) VALUES ('rolled back')");
          throw new Error('roll back');
        }),
      )
      .catch(() => undefined);
    const { rows } = await t.withTenant(lowes, (db) =>
      db.query("INSERT INTO ticket (subject) VALUES ('kept') RETURNING id"),
    );
    expect(rows[0]).toEqual({ id: '11' });
  });
});

describe('id generators', () => {
  it('are restart-safe: a new instance continues after the last reserved block', async () => {
    const tenant = f.tenants.shared.homeDepot;
    const before = await t.withTenant(tenant, () => t.ids.next('restart', { blockSize: 50 }));
    const next = await createTenantry({ databaseUrl: f.url, masterKey: f.key, install: false });
    try {
      const after = await next.withTenant(tenant.id, () => next.ids.next('restart', { blockSize: 50 }));
      expect(before).toBe(1n);
      expect(after).toBe(51n);
    } finally {
      await next.close();
    }
  });

  it('refuse to work outside a tenant context or with a bad entity or block size', async () => {
    expect(await codeOf(t.ids.next('order'))).toBe('TENANTRY_ERR_NO_TENANT');
    const tenant = f.tenants.shared.homeDepot;
    expect(await codeOf(t.withTenant(tenant, () => t.ids.next('no spaces')))).toBe(
      'TENANTRY_ERR_INVALID_ARGUMENT',
    );
    expect(await codeOf(t.withTenant(tenant, () => t.ids.next('x', { blockSize: 0 })))).toBe(
      'TENANTRY_ERR_INVALID_ARGUMENT',
    );
    expect(await codeOf(t.withTenant(tenant, (db) => db.query("SELECT tenantry.next_id('no spaces')")))).toBe(
      'TENANTRY_ERR_INVALID_ARGUMENT',
    );
    const error = await t.operator.query("SELECT tenantry.next_id('order')").catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: '42501',
      message: expect.stringMatching(/^TENANTRY_ERR_NO_TENANT:/),
    });
  });

  it("another tenant can neither read nor advance a tenant's counters", async () => {
    const { homeDepot, lowes } = f.tenants.shared;
    await t.withTenant(homeDepot, () => t.ids.next('secret', { blockSize: 1000 }));
    await t.withTenant(lowes, async (db) => {
      const { rows } = await db.query<{ entity: string }>('SELECT entity FROM tenantry.id_counter');
      expect(rows.map((r) => r.entity)).not.toContain('secret');
      const updated = await db.query("UPDATE tenantry.id_counter SET value = 0 WHERE entity = 'secret'");
      expect(updated.rowCount).toBe(0);
      expect(
        await codeOf(
          db.query(
            `INSERT INTO tenantry.id_counter (tenant_id, entity, value) VALUES (${homeDepot.id}, 'x', 1)`,
          ),
        ),
      ).toBe('42501');
    });
    const { rows } = await t.withTenant(homeDepot, (db) =>
      db.query("SELECT tenantry.next_id('secret') AS v"),
    );
    expect(rows[0]).toEqual({ v: '1001' });
    // SQL a schema tenant writes runs under its own role, which cannot read the counters at all.
    const schemaTenant = f.tenants.schema.homeDepot;
    expect(
      await codeOf(
        t.withTenant(
          schemaTenant,
          (db) => db.query(`SELECT * FROM ${schemaTenant.schemaName}.tenantry_id_counter`),
          { identity: 'tenant' },
        ),
      ),
    ).toBe('42501');
  });

  it('two processes × 10,000 ids of one tenant and entity never collide', async () => {
    const script = `
      const t = await lib.createTenantry({ databaseUrl: process.env.URL, masterKey: process.env.KEY, install: false });
      const ids = await t.withTenant(Number(process.env.TENANT), async () => {
        const out = [];
        for (let i = 0; i < 10000; i++) out.push(String(await t.ids.next('race', { blockSize: 37 })));
        return out;
      });
      say(ids);
      await t.close();
      process.exit(0);`;
    for (const isolation of ['shared', 'database'] as const) {
      const env = { URL: f.url, KEY: f.key, TENANT: String(f.tenants[isolation].lowes.id) };
      const children = [new ChildProcess(script, env), new ChildProcess(script, env)];
      const lists = await Promise.all(children.map((c) => c.next<string[]>(60_000)));
      await Promise.all(children.map((c) => c.exited));
      const all = lists.flat();
      expect(all).toHaveLength(20_000);
      expect(new Set(all).size).toBe(20_000);
    }
  }, 120_000);
});
