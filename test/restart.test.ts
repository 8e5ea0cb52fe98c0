import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { createTenantry, startEmbedded, type EmbeddedServer, type Tenantry } from '../src/index.js';
import { isConnectionError } from '../src/pool/index.js';

const dataDir = mkdtempSync(join(tmpdir(), 'tenantry-restart-'));
chmodSync(dataDir, 0o755);
let server: EmbeddedServer | undefined;
let tenantry: Tenantry | undefined;

afterAll(async () => {
  await tenantry?.close();
  await server?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('PostgreSQL restarted under load', () => {
  it('recovers without restarting tenantry and never answers with another tenant’s rows', async () => {
    server = await startEmbedded({ dataDir, port: 0 });
    const port = server.port;
    tenantry = await createTenantry({
      databaseUrl: server.url,
      pool: { budget: 6, checkoutTimeoutMs: 5_000 },
    });
    await tenantry.operator.query(
      'CREATE TABLE note (tenant_id int NOT NULL, id int NOT NULL, owner text NOT NULL, PRIMARY KEY (tenant_id, id))',
    );
    await tenantry.tables.multiTenant('public.note');
    const names = Array.from({ length: 10 }, (_, i) => `R${i}`);
    for (const name of names) {
      await tenantry.tenants.create({ name });
      await tenantry.withTenant(name, (db) =>
        db.query('INSERT INTO note (id, owner) SELECT g, $1 FROM generate_series(1, 5) g', [name]),
      );
    }

    let running = true;
    let ok = 0;
    const failures: unknown[] = [];
    const t = tenantry;
    const load = Array.from({ length: 8 }, async (_, worker) => {
      for (let i = 0; running; i++) {
        const name = names[(worker + i) % names.length]!;
        try {
          const { rows } = await t.withTenant(name, (db) =>
            db.query<{ owner: string }>('SELECT owner FROM note'),
          );
          expect(rows).toHaveLength(5);
          for (const row of rows) expect(row.owner).toBe(name);
          ok++;
        } catch (error) {
          failures.push(error);
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    });
    await new Promise((r) => setTimeout(r, 300));
    const before = ok;
    await server.stop();
    server = await startEmbedded({ dataDir, port });
    expect(server.port).toBe(port);
    const restartedAt = ok;
    await new Promise((r) => setTimeout(r, 1500));
    running = false;
    await Promise.all(load);

    expect(before).toBeGreaterThan(0);
    expect(ok - restartedAt).toBeGreaterThan(10);
    for (const failure of failures) {
      // only connection-level failures while the server was down; never a wrong row
      expect(failure instanceof pg.DatabaseError || failure instanceof Error).toBe(true);
      const unexpected =
        !isConnectionError(failure) &&
        !/POOL_TIMEOUT|DATABASE_UNREACHABLE|CONNECTION_LOST|ECONNREFUSED/.test(
          `${String(failure)} ${String((failure as { code?: unknown }).code)}`,
        );
      expect(unexpected, String(failure)).toBe(false);
    }
  });
});
