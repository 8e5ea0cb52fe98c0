import pg from 'pg';
import { seedDemo } from '../../src/demo/index.js';
import {
  createTenantry,
  generateMasterKey,
  type Gateway,
  type GatewayOptions,
  type Tenantry,
  type TenantryConfig,
} from '../../src/index.js';
import { createTestDatabase } from './db.js';

/** A demo database (seed 004 tenants, tables and users, password `demo`) behind a gateway. */
export interface GatewayFixture {
  readonly url: string;
  readonly tenantry: Tenantry;
  readonly gateway: Gateway;
  /** A connection string for `user` (e.g. `alice@HomeDepot`) through the gateway. */
  connectionString(user: string, password?: string, extra?: string): string;
  /** A node-postgres client logged in through the gateway (connected). */
  connect(user: string, password?: string, options?: Partial<pg.ClientConfig>): Promise<pg.Client>;
  close(): Promise<void>;
}

/** Starts a demo database and a gateway on a free port (`config`: tenantry settings besides the URL and key). */
export async function gatewayFixture(
  label: string,
  options: GatewayOptions = {},
  config: Partial<TenantryConfig> = {},
): Promise<GatewayFixture> {
  const url = await createTestDatabase(label);
  const tenantry = await createTenantry({ ...config, databaseUrl: url, masterKey: generateMasterKey() });
  await seedDemo(tenantry);
  const gateway = await tenantry.startGateway({ port: 0, ...options });
  const clients: pg.Client[] = [];
  const connectionString = (user: string, password = 'demo', extra = ''): string =>
    `postgresql://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${gateway.port}/tenantry${extra}`;
  return {
    url,
    tenantry,
    gateway,
    connectionString,
    async connect(user, password = 'demo', config = {}) {
      const client = new pg.Client({ connectionString: connectionString(user, password), ...config });
      client.on('error', () => undefined);
      await client.connect();
      clients.push(client);
      return client;
    },
    async close() {
      await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
      await gateway.close(2_000);
      await tenantry.close();
    },
  };
}
