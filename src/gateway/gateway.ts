import { timingSafeEqual } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { z } from 'zod';
import { TenantryError } from '../errors.js';
import { ClientConnection, type ConnectionSettings } from './client-connection.js';
import { errorResponse } from './protocol.js';
import type { GatewayHost } from './host.js';
import { StatementNames } from './statements.js';

const OptionsSchema = z
  .object({
    host: z.string().min(1).default('127.0.0.1'),
    port: z.number().int().min(0).max(65535).default(6432),
    database: z.string().min(1).max(63).default('tenantry'),
    poolMode: z.enum(['transaction', 'session']).default('transaction'),
    tls: z
      .object({
        cert: z.union([z.string(), z.instanceof(Buffer)]),
        key: z.union([z.string(), z.instanceof(Buffer)]),
      })
      .strict()
      .optional(),
    maxClients: z.number().int().positive().default(10_000),
    maxClientsPerTenant: z.number().int().positive().default(1_000),
    maxMessageBytes: z
      .number()
      .int()
      .min(1024)
      .max(1 << 30)
      .default(64 << 20),
    maxPreparedPerBackend: z.number().int().positive().default(250),
    revalidateMs: z.number().int().min(0).default(1_000),
  })
  .strict();

/** Options of {@link Gateway.start}; every field has a default. */
export type GatewayOptions = z.input<typeof OptionsSchema>;

/** Clients of one tenant at the gateway. */
export interface GatewayTenantStats {
  readonly tenant: string;
  readonly clients: number;
  /** Clients holding a backend right now (in a transaction). */
  readonly active: number;
}

/** A snapshot of the gateway (the admin view of clients; pools are in `poolStats()`). */
export interface GatewayStats {
  readonly clients: number;
  readonly active: number;
  readonly tenants: readonly GatewayTenantStats[];
  readonly clientList: readonly {
    readonly pid: number;
    readonly user: string;
    readonly tenant: string;
    readonly connectedAt: Date;
    readonly active: boolean;
    readonly transactions: number;
  }[];
}

/**
 * The PostgreSQL wire-protocol gateway: clients log in as `user@domain` and run SQL as their
 * tenant's login role on connections from the pool of pools.
 */
export class Gateway {
  readonly #server: net.Server;
  readonly #host: GatewayHost;
  readonly #settings: ConnectionSettings;
  readonly #options: z.output<typeof OptionsSchema>;
  readonly #clients = new Map<number, ClientConnection>();
  readonly #perTenant = new Map<number, number>();
  #closing: Promise<void> | undefined;

  private constructor(host: GatewayHost, options: z.output<typeof OptionsSchema>) {
    this.#host = host;
    this.#options = options;
    this.#settings = {
      database: options.database,
      poolMode: options.poolMode,
      maxMessageBytes: options.maxMessageBytes,
      secureContext: options.tls
        ? tls.createSecureContext({ cert: options.tls.cert, key: options.tls.key })
        : undefined,
      names: new StatementNames(),
      maxPreparedPerBackend: options.maxPreparedPerBackend,
      revalidateMs: options.revalidateMs,
    };
    this.#server = net.createServer((socket) => this.#accept(socket));
  }

  /**
   * Starts listening. Throws `TENANTRY_ERR_CONFIG` for bad options and
   * `TENANTRY_ERR_PORT_IN_USE` when the port is taken.
   */
  static async start(host: GatewayHost, input: GatewayOptions = {}): Promise<Gateway> {
    const parsed = OptionsSchema.safeParse(input);
    if (!parsed.success) {
      throw new TenantryError('CONFIG', {
        problem: `gateway: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
      });
    }
    let gateway: Gateway;
    try {
      gateway = new Gateway(host, parsed.data);
    } catch (error) {
      throw new TenantryError(
        'CONFIG',
        { problem: `gateway TLS: ${(error as Error).message}` },
        { cause: error },
      );
    }
    await new Promise<void>((resolve, reject) => {
      gateway.#server.once('error', (error: NodeJS.ErrnoException) =>
        reject(
          error.code === 'EADDRINUSE'
            ? new TenantryError('PORT_IN_USE', { port: parsed.data.port, what: 'gateway', flag: '--pg-port' })
            : error,
        ),
      );
      gateway.#server.listen(parsed.data.port, parsed.data.host, () => resolve());
    });
    return gateway;
  }

  /** The port the gateway listens on. */
  get port(): number {
    return (this.#server.address() as net.AddressInfo).port;
  }

  /** The address clients connect to. */
  get host(): string {
    return this.#options.host;
  }

  #accept(socket: net.Socket): void {
    if (this.#closing || this.#clients.size >= this.#options.maxClients) {
      // A FATAL ErrorResponse, as PostgreSQL answers (libpq shows it; an SSLRequest sees an 'E').
      const refusal = this.#closing
        ? { code: '57P03', message: 'TENANTRY_ERR_CLOSED: the gateway is shutting down' }
        : {
            code: '53300',
            message: `TENANTRY_ERR_TOO_MANY_CONNECTIONS: ${
              new TenantryError('TOO_MANY_CONNECTIONS', {
                scope: 'to the gateway',
                limit: this.#options.maxClients,
              }).message
            }`,
          };
      socket.on('error', () => undefined);
      socket.end(errorResponse({ severity: 'FATAL', ...refusal }));
      socket.setTimeout(1_000, () => socket.destroy());
      return;
    }
    const connection: ClientConnection = new ClientConnection(socket, this.#host, this.#settings, {
      admit: (c) => this.#admit(c),
      cancel: (pid, secret) => this.#cancel(pid, secret),
      closed: (c) => this.#closed(c),
    });
    this.#clients.set(connection.pid, connection);
  }

  #admit(connection: ClientConnection): void {
    const tenant = connection.identity?.tenant;
    if (!tenant) return;
    const count = this.#perTenant.get(tenant.id) ?? 0;
    if (count >= this.#options.maxClientsPerTenant) {
      throw new TenantryError('TOO_MANY_CONNECTIONS', {
        scope: `for tenant ${tenant.name}`,
        limit: this.#options.maxClientsPerTenant,
      });
    }
    this.#perTenant.set(tenant.id, count + 1);
    connection.admitted = true;
  }

  #closed(connection: ClientConnection): void {
    if (this.#clients.get(connection.pid) === connection) this.#clients.delete(connection.pid);
    const tenant = connection.identity?.tenant;
    if (tenant && connection.admitted) {
      const count = (this.#perTenant.get(tenant.id) ?? 1) - 1;
      if (count <= 0) this.#perTenant.delete(tenant.id);
      else this.#perTenant.set(tenant.id, count);
    }
  }

  /** A cancel is honoured only with the key the client was given (compared in constant time). */
  #cancel(pid: number, secret: number): void {
    const target = this.#clients.get(pid);
    if (!target) return;
    const given = Buffer.alloc(4);
    given.writeInt32BE(secret);
    const expected = Buffer.alloc(4);
    expected.writeInt32BE(target.secret);
    if (timingSafeEqual(given, expected)) target.cancelBackend();
  }

  /** Clients, per-tenant counts and who holds a backend. */
  stats(): GatewayStats {
    const clients = [...this.#clients.values()].filter((c) => c.identity);
    const tenants = new Map<string, { clients: number; active: number }>();
    for (const c of clients) {
      const name = (c.identity?.effective ?? c.identity?.tenant)?.name ?? '?';
      const entry = tenants.get(name) ?? { clients: 0, active: 0 };
      entry.clients++;
      if (c.relay?.attached) entry.active++;
      tenants.set(name, entry);
    }
    return {
      clients: clients.length,
      active: clients.filter((c) => c.relay?.attached).length,
      tenants: [...tenants].map(([tenant, v]) => ({ tenant, ...v })),
      clientList: clients.map((c) => ({
        pid: c.pid,
        user: c.identity?.user ?? '',
        tenant: (c.identity?.effective ?? c.identity?.tenant)?.name ?? '',
        connectedAt: new Date(c.connectedAt),
        active: c.relay?.attached === true,
        transactions: c.relay?.transactions ?? 0,
      })),
    };
  }

  /**
   * Graceful shutdown: stops accepting, closes idle clients, lets transactions in progress
   * finish, and closes whatever is left after `timeoutMs` (default 30 s).
   */
  close(timeoutMs = 30_000): Promise<void> {
    this.#closing ??= (async () => {
      const stopped = new Promise<void>((resolve) => this.#server.close(() => resolve()));
      const open = [...this.#clients.values()].filter((c) => !c.shutdown());
      const deadline = Date.now() + timeoutMs;
      while (open.some((c) => this.#clients.has(c.pid)) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
      }
      for (const c of this.#clients.values())
        c.fatal('57P01', 'TENANTRY_ERR_CLOSED: the gateway is shutting down');
      await stopped;
    })();
    return this.#closing;
  }
}
