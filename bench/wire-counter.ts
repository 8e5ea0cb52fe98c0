/**
 * A TCP pass-through in front of PostgreSQL that counts protocol messages, so a benchmark can
 * show how many round trips a query really takes instead of asserting it. Every Sync or simple
 * Query the client sends is answered by exactly one ReadyForQuery ('Z'), after which a
 * client that is not pipelining several syncs waits; so ReadyForQuery messages = round trips.
 */
import net from 'node:net';

/** Counts since the last {@link WireCounter.reset}. */
export interface WireCounts {
  /** ReadyForQuery messages from the server: round trips. */
  readonly readyForQuery: number;
  /** Sync ('S') plus simple Query ('Q') messages from clients. */
  readonly syncs: number;
  /** All protocol messages from clients (Parse, Bind, Describe, Execute, Sync, Query, …). */
  readonly clientMessages: number;
}

/** Splits a PostgreSQL message stream (type byte + int32 length) and reports each message type. */
class MessageSplitter {
  #buffer: Buffer = Buffer.alloc(0);
  /** The client's first message (startup) has no type byte. */
  #untypedFirst: boolean;

  constructor(
    untypedFirst: boolean,
    private readonly onMessage: (type: number) => void,
  ) {
    this.#untypedFirst = untypedFirst;
  }

  push(chunk: Buffer): void {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    for (;;) {
      if (this.#untypedFirst) {
        if (this.#buffer.length < 4) return;
        const length = this.#buffer.readInt32BE(0);
        if (this.#buffer.length < length) return;
        this.#buffer = this.#buffer.subarray(length);
        this.#untypedFirst = false;
        continue;
      }
      if (this.#buffer.length < 5) return;
      const length = this.#buffer.readInt32BE(1);
      if (this.#buffer.length < 1 + length) return;
      this.onMessage(this.#buffer[0]!);
      this.#buffer = this.#buffer.subarray(1 + length);
    }
  }
}

const READY_FOR_QUERY = 'Z'.charCodeAt(0);
const SYNC = 'S'.charCodeAt(0);
const QUERY = 'Q'.charCodeAt(0);

/** A counting proxy on 127.0.0.1; connect to {@link WireCounter.port} instead of the server. */
export class WireCounter {
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();
  #ready = 0;
  #syncs = 0;
  #clientMessages = 0;

  private constructor(server: net.Server) {
    this.#server = server;
  }

  /** Starts a proxy to `host:port`. */
  static async start(host: string, port: number): Promise<WireCounter> {
    const server = net.createServer();
    const counter = new WireCounter(server);
    server.on('connection', (client) => counter.#relay(client, host, port));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    return counter;
  }

  /** `url` redirected through this proxy. */
  redirect(url: string): string {
    const parsed = new URL(url);
    parsed.hostname = '127.0.0.1';
    parsed.port = String(this.port);
    return parsed.toString();
  }

  get port(): number {
    const address = this.#server.address();
    if (address === null || typeof address === 'string') throw new Error('proxy is not listening');
    return address.port;
  }

  /** The counts since the last reset. */
  counts(): WireCounts {
    return { readyForQuery: this.#ready, syncs: this.#syncs, clientMessages: this.#clientMessages };
  }

  reset(): void {
    this.#ready = 0;
    this.#syncs = 0;
    this.#clientMessages = 0;
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #relay(client: net.Socket, host: string, port: number): void {
    const upstream = net.connect(port, host);
    this.#sockets.add(client).add(upstream);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    const fromClient = new MessageSplitter(true, (type) => {
      this.#clientMessages++;
      if (type === SYNC || type === QUERY) this.#syncs++;
    });
    const fromServer = new MessageSplitter(false, (type) => {
      if (type === READY_FOR_QUERY) this.#ready++;
    });
    client.on('data', (chunk: Buffer) => {
      fromClient.push(chunk);
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      fromServer.push(chunk);
      client.write(chunk);
    });
    const end = (): void => {
      client.destroy();
      upstream.destroy();
      this.#sockets.delete(client);
      this.#sockets.delete(upstream);
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  }
}
