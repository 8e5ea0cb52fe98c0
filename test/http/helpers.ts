import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { seedDemo } from '../../src/demo/index.js';
import { buildHttp, createTenantry, generateMasterKey, type Tenantry } from '../../src/index.js';
import { createTestDatabase } from '../helpers/db.js';

/** The admin token the HTTP fixtures use. */
export const ADMIN = 'test-admin-token-0123456789';

/** A demo database behind the HTTP API (fastify inject, no port), with its log lines captured. */
export interface HttpFixture {
  readonly tenantry: Tenantry;
  readonly app: FastifyInstance;
  /** Every log line written so far (JSON). */
  readonly logs: string[];
  close(): Promise<void>;
}

export async function httpFixture(
  label: string,
  options: { rowLimit?: number; statementTimeoutMs?: number; topN?: number } = {},
): Promise<HttpFixture> {
  const url = await createTestDatabase(label);
  const tenantry = await createTenantry({ databaseUrl: url, masterKey: generateMasterKey() });
  await seedDemo(tenantry);
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logs.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  const { app } = await buildHttp(tenantry, {
    logger: pino({ level: 'info' }, sink),
    adminToken: ADMIN,
    limits: {
      ...(options.rowLimit === undefined ? {} : { rowLimit: options.rowLimit }),
      ...(options.statementTimeoutMs === undefined ? {} : { statementTimeoutMs: options.statementTimeoutMs }),
    },
    ...(options.topN === undefined ? {} : { metricsTopTenants: options.topN }),
  });
  await app.ready();
  return {
    tenantry,
    app,
    logs,
    async close() {
      await app.close();
      await tenantry.close();
    },
  };
}

/** Headers of a tenant request. */
export function as(token: string, tenant?: string): Record<string, string> {
  return { authorization: `Bearer ${token}`, ...(tenant === undefined ? {} : { 'x-tenant-id': tenant }) };
}
