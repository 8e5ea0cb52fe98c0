import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbedded, type EmbeddedServer } from '../src/embedded/index.js';

const runsAsRoot = process.getuid?.() === 0;
const timeout = 30_000;

/** A fresh directory under the OS temp dir that the `postgres` user can reach. */
async function reachableTempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tenantry-embedded-'));
  await chmod(dir, 0o755);
  return dir;
}

async function query<T extends pg.QueryResultRow>(url: string, sql: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql)).rows;
  } finally {
    await client.end();
  }
}

async function withServer<T>(
  server: EmbeddedServer,
  use: (server: EmbeddedServer) => Promise<T>,
): Promise<T> {
  try {
    return await use(server);
  } finally {
    await server.stop();
  }
}

describe('embedded PostgreSQL', () => {
  const cleanup: string[] = [];
  let base: string;

  beforeAll(async () => {
    base = await reachableTempDir();
    cleanup.push(base);
  });

  afterAll(async () => {
    for (const dir of cleanup) await rm(dir, { recursive: true, force: true });
  });

  it(
    'starts a fresh cluster, then reuses it with the same password and data',
    async () => {
      const dataDir = path.join(base, 'reuse');
      const first = await startEmbedded({ dataDir });
      expect(first.url).toMatch(/^postgresql:\/\/postgres:[^@]+@127\.0\.0\.1:\d+\/postgres$/);
      expect(first.dataDir).toBe(path.resolve(dataDir));
      const firstPassword = new URL(first.url).password;
      await withServer(first, async (server) => {
        const [row] = await query<{ version: string }>(server.url, 'select version()');
        expect(row?.version).toMatch(/^PostgreSQL 17\./);
        await query(server.url, `create table lowes_items (sku int primary key, name text)`);
        await query(server.url, `insert into lowes_items values (1, 'hammer')`);
        const [encoding] = await query<{ server_encoding: string }>(server.url, 'show server_encoding');
        expect(encoding?.server_encoding).toBe('UTF8');
      });
      await first.stop(); // idempotent

      await withServer(await startEmbedded({ dataDir }), async (server) => {
        expect(new URL(server.url).password).toBe(firstPassword);
        const rows = await query<{ name: string }>(server.url, 'select name from lowes_items');
        expect(rows).toEqual([{ name: 'hammer' }]);
      });
    },
    timeout,
  );

  it(
    'refuses a second server on a data directory that is in use, naming the pid',
    async () => {
      const dataDir = path.join(base, 'busy');
      await withServer(await startEmbedded({ dataDir }), async () => {
        await expect(startEmbedded({ dataDir })).rejects.toThrow(
          /another PostgreSQL server \(pid \d+\) is already running on the data directory/,
        );
      });
    },
    timeout,
  );

  it(
    'picks another port when the preferred one is taken',
    async () => {
      const blocker = net.createServer();
      await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
      const address = blocker.address();
      const taken = typeof address === 'object' && address !== null ? address.port : 0;
      try {
        await withServer(
          await startEmbedded({ dataDir: path.join(base, 'port'), port: taken }),
          async (server) => {
            expect(server.port).not.toBe(taken);
            expect(server.url).toContain(`:${server.port}/`);
            const [row] = await query<{ one: number }>(server.url, 'select 1 as one');
            expect(row?.one).toBe(1);
          },
        );
      } finally {
        await new Promise<void>((resolve) => blocker.close(() => resolve()));
      }
    },
    timeout,
  );

  // Only root hands the server to another OS user; as any other user PostgreSQL runs as that
  // user, who can always reach its own data directory, so there is nothing to refuse.
  it.runIf(runsAsRoot)(
    'as root, refuses a data directory the postgres user cannot reach, naming the directory',
    async () => {
      const closed = await mkdtemp(path.join(os.tmpdir(), 'tenantry-closed-'));
      cleanup.push(closed);
      await chmod(closed, 0o700);
      await mkdir(path.join(closed, 'inner'));
      const dataDir = path.join(closed, 'inner', 'data');
      const failure = startEmbedded({ dataDir });
      await expect(failure).rejects.toMatchObject({ code: 'TENANTRY_ERR_EMBEDDED_START' });
      await expect(failure).rejects.toThrow(
        `${closed} is mode 0700 owned by root; the postgres user cannot traverse it`,
      );
      await expect(failure).rejects.toThrow('chmod o+x');
    },
    timeout,
  );

  it(
    'a server that exits while starting fails with its own output',
    async () => {
      const failure = startEmbedded({
        dataDir: path.join(base, 'bad-setting'),
        postgresFlags: ['no_such_setting=1'],
      });
      await expect(failure).rejects.toThrow(
        /PostgreSQL exited \(exit code \d+\) before accepting connections/,
      );
      await expect(failure).rejects.toThrow(/no_such_setting/);
    },
    timeout,
  );

  it(
    'a lost superuser password fails fast with a clear error',
    async () => {
      const dataDir = path.join(base, 'wrong-password');
      await (await startEmbedded({ dataDir })).stop();
      await writeFile(path.join(dataDir, 'superuser-password'), 'not-the-password\n');
      await expect(startEmbedded({ dataDir })).rejects.toThrow(/refused the superuser password stored in/);
    },
    timeout,
  );

  it('rejects a setting that is not name=value', async () => {
    await expect(
      startEmbedded({ dataDir: path.join(base, 'flags'), postgresFlags: ['fsync'] }),
    ).rejects.toThrow(/"fsync" is not a PostgreSQL setting/);
  });
});
