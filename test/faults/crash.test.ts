import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  audit,
  createTenantry,
  generateMasterKey,
  startEmbedded,
  type EmbeddedServer,
  type Tenantry,
} from '../../src/index.js';
import { ChildProcess } from '../runtime/child.js';
import { urlFor, withClient } from '../helpers/db.js';

// A server of its own: every tenant object on it belongs to one of the two catalogs below, so
// "every database and role has its tenant" can be checked exactly (on the shared test server,
// other files' tenants come and go). The second catalog is a bystander: repair must not touch it.
const dataDir = mkdtempSync(join(tmpdir(), 'tenantry-crash-'));
chmodSync(dataDir, 0o755);
const key = generateMasterKey();
const ROUNDS = 6;
let server: EmbeddedServer;
let url: string;
let t: Tenantry;
let bystander: Tenantry;

beforeAll(async () => {
  server = await startEmbedded({
    dataDir,
    port: 0,
    postgresFlags: ['-c', 'fsync=off', '-c', 'synchronous_commit=off'],
  });
  await withClient(server.url, async (c) => {
    await c.query('CREATE DATABASE crash_main');
    await c.query('CREATE DATABASE crash_other');
  });
  url = urlFor(server.url, 'crash_main');
  t = await createTenantry({ databaseUrl: url, masterKey: key, pool: { budget: 8 } });
  bystander = await createTenantry({ databaseUrl: urlFor(server.url, 'crash_other'), masterKey: key });
  for (const tenantry of [t, bystander]) {
    await tenantry.operator.query(
      'CREATE TABLE note (tenant_id int NOT NULL, id int NOT NULL, owner text NOT NULL, PRIMARY KEY (tenant_id, id))',
    );
    await tenantry.tables.multiTenant('public.note');
  }
  for (const [name, isolation] of [
    ['Keep1', 'shared'],
    ['Keep2', 'schema'],
    ['Keep3', 'database'],
  ] as const) {
    await t.tenants.create({ name, isolation, loginRole: isolation === 'shared' });
    await bystander.tenants.create({ name, isolation, loginRole: isolation === 'shared' });
  }
}, 120_000);

afterAll(async () => {
  await t?.close();
  await bystander?.close();
  await server?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

/**
 * Catalog changes in a loop, forever: create shared / schema / database tenants, write a row as
 * each, give shared ones a login role afterwards, add a domain and a user, declare a new
 * multi-tenant table now and then, and drop every other tenant again.
 */
const CHILD = `
const t = await lib.createTenantry({ databaseUrl: process.env.URL, masterKey: process.env.KEY, install: false, pool: { budget: 4 } });
const round = process.env.ROUND;
const models = ['shared', 'schema', 'database'];
say({ ready: true });
for (let i = 0; ; i++) {
  const name = 'c' + round + '_' + i;
  const isolation = models[(i + Number(round)) % 3];
  try {
  say({ step: 'create', name, isolation });
  await t.tenants.create({ name, isolation, loginRole: isolation === 'shared' && i % 2 === 0 });
  await t.withTenant(name, (db) => db.query('INSERT INTO note (id, owner) VALUES (1, $1)', [name]));
  if (isolation === 'shared' && i % 2 === 1) await t.tenants.ensureLoginRole(name);
  await t.domains.add('d' + name, { tenant: name });
  await t.users.add('u@d' + name, { password: 'pw', permission: 'admin' });
  if (i === 1) {
    const table = 'extra_' + round;
    await t.operator.query('CREATE TABLE ' + table + ' (tenant_id int NOT NULL, id int NOT NULL, PRIMARY KEY (tenant_id, id))');
    say({ step: 'declare', table });
    await t.tables.multiTenant('public.' + table);
  }
  if (i % 2 === 1) {
    say({ step: 'drop', name, isolation });
    await t.tenants.drop(name, { force: true });
  }
  } catch (error) {
    say({ step: 'error', name, message: String(error), code: error.code, stack: error.stack });
  }
}
`;

/** A line the child prints before each step. */
interface Step {
  readonly step?: string;
  readonly isolation?: string;
  readonly message?: string;
}

/** Every `tenantry_t_…` / `tenantry_f_…` database, role and schema on the server. */
async function tenantObjects(): Promise<{
  databases: string[];
  roles: string[];
  schemas: Map<string, string[]>;
}> {
  return withClient(server.url, async (c) => {
    const databases = (
      await c.query<{ n: string }>(
        "SELECT datname AS n FROM pg_database WHERE datname ~ '^tenantry_t_' ORDER BY 1",
      )
    ).rows.map((r) => r.n);
    const roles = (
      await c.query<{ n: string }>(
        "SELECT rolname AS n FROM pg_roles WHERE rolname ~ '^tenantry_t_' ORDER BY 1",
      )
    ).rows.map((r) => r.n);
    const schemas = new Map<string, string[]>();
    for (const db of ['crash_main', 'crash_other']) {
      await withClient(urlFor(server.url, db), async (d) => {
        const { rows } = await d.query<{ n: string }>(
          "SELECT nspname AS n FROM pg_namespace WHERE nspname ~ '^tenantry_[ft]_' ORDER BY 1",
        );
        schemas.set(
          db,
          rows.map((r) => r.n),
        );
      });
    }
    return { databases, roles, schemas };
  });
}

/** What the catalogs say should exist: databases, login roles, schemas (per catalog database). */
async function expected(): Promise<{ databases: string[]; roles: string[]; schemas: Map<string, string[]> }> {
  const databases: string[] = [];
  const roles: string[] = [];
  const schemas = new Map<string, string[]>();
  for (const [db, tenantry] of [
    ['crash_main', t],
    ['crash_other', bystander],
  ] as const) {
    const { rows } = await tenantry.operator.query<{
      database_name: string | null;
      schema_name: string | null;
      uuid: string;
      login: boolean;
    }>(
      `SELECT database_name, schema_name, uuid::text AS uuid,
              EXISTS (SELECT 1 FROM tenantry.tenant_role r WHERE r.tenant_id = t.id) AS login
       FROM tenantry.tenant t WHERE kind <> 'group'`,
    );
    const { rows: roleRows } = await tenantry.operator.query<{ role_name: string }>(
      'SELECT role_name FROM tenantry.tenant_role',
    );
    roles.push(...roleRows.map((r) => r.role_name));
    databases.push(...rows.flatMap((r) => (r.database_name ? [r.database_name] : [])));
    // Schema tenants: data and face schema; others with a login role: a face schema may exist
    const own: string[] = [];
    for (const r of rows) {
      if (r.schema_name) own.push(r.schema_name, `tenantry_f_${r.uuid.replace(/-/g, '')}`);
    }
    schemas.set(db, own.sort());
  }
  return { databases: databases.sort(), roles: roles.sort(), schemas };
}

/** Every tenant of the catalog works: writes, reads only its own rows, and reads every registered table. */
async function everyTenantWorks(tenantry: Tenantry): Promise<number> {
  const tenants = (await tenantry.tenants.list()).filter((x) => x.kind === 'regular');
  const tables = tenantry.tables.list().filter((x) => x.kind === 'multi_tenant');
  for (const tenant of tenants) {
    await tenantry.withTenant(tenant.name, async (db) => {
      await db.query('INSERT INTO note (id, owner) VALUES (1000, $1) ON CONFLICT DO NOTHING', [tenant.name]);
      const { rows } = await db.query<{ owner: string }>('SELECT owner FROM note');
      expect(rows.length, tenant.name).toBeGreaterThan(0);
      expect(new Set(rows.map((r) => r.owner)), tenant.name).toEqual(new Set([tenant.name]));
      for (const table of tables)
        await db.query(
          `SELECT count(*) FROM ${pg.escapeIdentifier(table.schema)}.${pg.escapeIdentifier(table.table)}`,
        );
    });
    if (tenant.role) {
      // and as its own login role (the faces that run tenant SQL)
      await tenantry.withTenant(
        tenant.name,
        async (db) => {
          const { rows } = await db.query<{ owner: string }>('SELECT owner FROM note');
          expect(new Set(rows.map((r) => r.owner)), tenant.name).toEqual(new Set([tenant.name]));
        },
        { identity: 'tenant' },
      );
    }
  }
  return tenants.length;
}

describe('tenantry killed -9 during catalog changes', () => {
  it('repair removes every orphan, leaves other catalogs and moves alone, and every tenant works', async () => {
    const before = await tenantObjects();
    const steps: string[] = [];
    const errors: Step[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const child = new ChildProcess(CHILD, { URL: url, KEY: key, ROUND: String(round) });
      try {
        expect(await child.next(20_000)).toEqual({ ready: true });
        // Killed at a random moment (round 0, 3), or a random moment of the first database
        // tenant's creation (1, 4) or drop (2, 5): the windows that can leave a role or database.
        const lines: Step[] = [];
        const trigger = round % 3;
        let deadline = Date.now() + (trigger === 0 ? 300 + Math.random() * 2_500 : 8_000);
        while (Date.now() < deadline) {
          const line = await Promise.race([
            child.next<Step>(10_000),
            new Promise<undefined>((r) => setTimeout(() => r(undefined), deadline - Date.now())),
          ]);
          if (!line) continue;
          lines.push(line);
          const hit =
            (trigger === 1 && line.step === 'create' && line.isolation === 'database') ||
            (trigger === 2 && line.step === 'drop' && line.isolation === 'database');
          if (hit) deadline = Date.now() + Math.random() * (trigger === 1 ? 500 : 150);
        }
        steps.push(lines.map((l) => l.step).join(','));
        errors.push(...lines.filter((l) => l.step === 'error'));
      } finally {
        await child.kill('SIGKILL');
      }
    }
    // A killed client's last statement may still be running in its backend: let it finish.
    await withClient(url, async (c) => {
      for (let i = 0; i < 100; i++) {
        const { rows } = await c.query<{ n: number }>(
          "SELECT count(*)::int AS n FROM pg_stat_activity WHERE backend_type = 'client backend' AND state <> 'idle' AND pid <> pg_backend_pid()",
        );
        if (rows[0]?.n === 0) return;
        await new Promise((r) => setTimeout(r, 100));
      }
    });
    // The child never failed except by being killed: a kill leaves nothing that breaks the next run.
    expect(errors).toEqual([]);
    // The catalog's own view, before repair: what was left behind.
    const dry = await t.tenants.repair({ dryRun: true });
    const report = await t.tenants.repair();
    console.log(
      `crash rounds: ${steps.length}; steps per round: ${steps.map((s) => s.split(',').length).join(' ')}; ` +
        `orphans found: ${report.orphans.map((o) => `${o.kind}:${o.evidence}:${o.outcome}`).join(' ') || 'none'}; ` +
        `stale databases: ${report.staleDatabases.length}; records cleared: ${report.clearedRecords}`,
    );
    expect(dry.orphans.map((o) => o.name).sort()).toEqual(report.orphans.map((o) => o.name).sort());
    expect(report.failed, JSON.stringify(report)).toBe(false);
    expect(report.orphans.every((o) => o.outcome === 'removed')).toBe(true);
    const again = await t.tenants.repair();
    expect(again.orphans).toEqual([]);
    expect(again.staleDatabases).toEqual([]);
    // Exactly the objects the two catalogs name exist: no orphan, nothing missing.
    const have = await tenantObjects();
    const want = await expected();
    expect(have.databases).toEqual(want.databases);
    expect(have.roles).toEqual(want.roles);
    expect(have.schemas.get('crash_main')).toEqual(want.schemas.get('crash_main'));
    expect(have.schemas.get('crash_other')).toEqual(want.schemas.get('crash_other'));
    // the bystander catalog kept all it had
    expect(have.databases.filter((d) => before.databases.includes(d))).toEqual(before.databases);
    const { rows } = await t.operator.query('SELECT * FROM tenantry.tenant_object_intent');
    expect(rows).toEqual([]);
    for (const [db, tenantry] of [
      [url, t],
      [urlFor(server.url, 'crash_other'), bystander],
    ] as const) {
      const result = await audit(db);
      expect(result.findings.filter((f) => f.severity === 'high' || f.check.startsWith('orphan-'))).toEqual(
        [],
      );
      expect(await everyTenantWorks(tenantry)).toBeGreaterThanOrEqual(3);
    }
  }, 120_000);

  it('audit reports an orphaned role and database; repair leaves a tenant being moved and a live creation alone', async () => {
    // (first: creating a database tenant finishes recorded leftovers, see below)
    // A tenant being moved: its target database and role (`_m1`) exist besides its own.
    const moving = await t.tenants.create({ name: 'Moving', isolation: 'database' });
    const target = `${moving.databaseName ?? ''}_m1`;
    await t.operator.query(`CREATE ROLE ${target} NOLOGIN`);
    await t.operator.query(
      `INSERT INTO tenantry.tenant_move (tenant_id, source, target, phase) VALUES ($1, $2, $3, 'copy')`,
      [
        moving.id,
        JSON.stringify({
          isolation: 'database',
          server: 'main',
          database: moving.databaseName,
          roles: [moving.role],
        }),
        JSON.stringify({
          isolation: 'database',
          server: 'main',
          database: moving.databaseName,
          roles: [target],
        }),
      ],
    );
    // A drop that died after its commit: the record names the database and role, still there.
    const victim = await t.tenants.create({ name: 'Victim', isolation: 'database' });
    const name = victim.databaseName ?? '';
    await t.operator.query(
      `INSERT INTO tenantry.tenant_object_intent (server, kind, name, tenant_uuid, action)
       VALUES ('main', 'database', $1, $2, 'drop'), ('main', 'role', $1, $2, 'drop')`,
      [name, victim.uuid],
    );
    await t.operator.query('DELETE FROM tenantry.tenant_role WHERE tenant_id = $1', [victim.id]);
    await t.operator.query('DELETE FROM tenantry.tenant WHERE id = $1', [victim.id]);
    // A shared tenant's login role whose tenant row vanished (membership is the evidence).
    const ghost = await t.tenants.create({ name: 'Ghost', loginRole: true });
    await t.operator.query('DELETE FROM tenantry.tenant_role WHERE tenant_id = $1', [ghost.id]);
    await t.operator.query('DELETE FROM tenantry.tenant WHERE id = $1', [ghost.id]);
    // A creation in progress in a live process: recorded, its tenant's lock held.
    const live = '0b5e6a0e-1c1d-4e2f-8a3b-4c5d6e7f8091';
    const liveName = `tenantry_t_${live.replace(/-/g, '')}`;
    await t.operator.query(`CREATE ROLE ${liveName} NOLOGIN`);
    await t.operator.query(
      `INSERT INTO tenantry.tenant_object_intent (server, kind, name, tenant_uuid, action) VALUES ('main', 'role', $1, $2, 'create')`,
      [liveName, live],
    );
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    try {
      await holder.query('SELECT pg_advisory_lock(1952803950, hashtext($1))', [live]);
      const report = await audit(url);
      const orphans = report.findings.filter((f) => f.check.startsWith('orphan-'));
      expect(orphans.map((f) => `${f.check} ${f.object} ${f.severity}`).sort()).toEqual(
        [`orphan-database ${name} medium`, `orphan-role ${name} medium`].sort(),
      );
      // the group member is the roles check's (high: it can log in with tenant rights)
      expect(report.findings.filter((f) => f.check === 'tenant-role-orphaned').map((f) => f.object)).toEqual([
        ghost.role,
      ]);
      const repaired = await t.tenants.repair();
      expect(repaired.orphans.map((o) => `${o.kind} ${o.name} ${o.outcome}`).sort()).toEqual(
        [
          `database ${name} removed`,
          `role ${name} removed`,
          `role ${ghost.role} removed`,
          `role ${liveName} skipped`,
        ].sort(),
      );
      const exists = await t.operator.query<{ n: string }>(
        'SELECT rolname AS n FROM pg_roles WHERE rolname = ANY($1) ORDER BY 1',
        [[target, liveName, name, ghost.role]],
      );
      expect(exists.rows.map((r) => r.n)).toEqual([target, liveName].sort());
    } finally {
      await holder.end();
    }
    // Once the creator is gone (lock released), the next repair finishes its leftovers.
    const later = await t.tenants.repair();
    expect(later.orphans.map((o) => `${o.kind} ${o.name} ${o.outcome}`)).toEqual([
      `role ${liveName} removed`,
    ]);
    await t.operator.query('DELETE FROM tenantry.tenant_move WHERE tenant_id = $1', [moving.id]);
    await t.operator.query(`DROP ROLE ${target}`);
    await t.tenants.drop('Moving', { force: true });
    expect((await t.tenants.repair()).orphans).toEqual([]);
  }, 60_000);

  it('creating a database tenant first removes what a dead creation left on its server', async () => {
    const dead = '7d0c2b9e-5f3a-4b1c-9e8d-1a2b3c4d5e6f';
    const name = `tenantry_t_${dead.replace(/-/g, '')}`;
    await t.operator.query(`CREATE ROLE ${name} LOGIN`);
    await withClient(server.url, (c) => c.query(`CREATE DATABASE ${name}`));
    await t.operator.query(
      `INSERT INTO tenantry.tenant_object_intent (server, kind, name, tenant_uuid, action)
       VALUES ('main', 'database', $1, $2, 'create'), ('main', 'role', $1, $2, 'create')`,
      [name, dead],
    );
    await t.tenants.create({ name: 'After', isolation: 'database' });
    const left = await t.operator.query(
      'SELECT 1 FROM pg_roles WHERE rolname = $1 UNION ALL SELECT 1 FROM pg_database WHERE datname = $1',
      [name],
    );
    expect(left.rowCount).toBe(0);
    expect((await t.operator.query('SELECT * FROM tenantry.tenant_object_intent')).rows).toEqual([]);
    await t.tenants.drop('After', { force: true });
  });
});
