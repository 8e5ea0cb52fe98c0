import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { serializeError } from '../src/logger.js';
import { createTestDatabase, withClient } from './helpers/db.js';

describe('log lines of errors', () => {
  it('keep the code and message of a lost pooled connection but not the connection object pg hangs on it', async () => {
    const url = await createTestDatabase('logger');
    const pool = new pg.Pool({ connectionString: url, max: 1 });
    const failed = new Promise<Error>((resolve) => pool.once('error', resolve));
    const client = await pool.connect();
    const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    client.release();
    await withClient(url, (admin) => admin.query('SELECT pg_terminate_backend($1)', [rows[0]!.pid]));
    const error = await failed;
    expect((error as Error & { client?: unknown }).client).toBeDefined();
    const line = serializeError(error);
    expect(line).not.toHaveProperty('client');
    expect(line).toMatchObject({ code: '57P01', message: expect.stringContaining('terminating connection') });
    expect(JSON.stringify(line).length).toBeLessThan(3_000);
    await pool.end();
  });
});
