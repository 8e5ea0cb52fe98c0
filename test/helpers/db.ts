import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';

/** The test server's superuser URL. */
export function serverUrl(): string {
  return inject('pgUrl');
}

/** Returns `url` pointing at `database`. */
export function urlFor(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

/**
 * Creates a fresh database for one test file (so files run in parallel) and returns its
 * superuser URL. `label` appears in the name to make failures easy to trace.
 */
export async function createTestDatabase(label: string): Promise<string> {
  const name = `t_${label.replace(/[^a-z0-9]/gi, '_').toLowerCase()}_${randomBytes(4).toString('hex')}`;
  const client = new pg.Client({ connectionString: serverUrl() });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
  } finally {
    await client.end();
  }
  return urlFor(serverUrl(), name);
}

/** Runs `fn` with a plain superuser client on `url`, then closes it. */
export async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}
