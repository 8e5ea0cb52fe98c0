import net from 'node:net';

/**
 * What the proxy does to traffic:
 * - `pass`: forwards bytes both ways;
 * - `latency`: forwards every chunk `ms` later (order kept);
 * - `blackhole`: accepts connections but forwards nothing either way and never closes
 *   (a dead middlebox: the peer's TCP stack still acknowledges);
 * - `reset`: answers new connections and the next chunk of existing ones with a TCP RST;
 * - `slowClose`: forwards bytes, but a close on one side reaches the other `ms` later.
 */
export type FaultMode =
  | { readonly kind: 'pass' }
  | { readonly kind: 'latency'; readonly ms: number }
  | { readonly kind: 'blackhole' }
  | { readonly kind: 'reset' }
  | { readonly kind: 'slowClose'; readonly ms: number };

interface Link {
  readonly client: net.Socket;
  readonly server: net.Socket;
  closed: boolean;
}

/**
 * A TCP proxy between tenantry and PostgreSQL whose behaviour can be switched at runtime
 * (see {@link FaultMode}); it can also kill every connection it carries. Listens on
 * 127.0.0.1 on a port from the OS.
 */
export class FaultProxy {
  readonly #server: net.Server;
  readonly #target: { host: string; port: number };
  readonly #links = new Set<Link>();
  #mode: FaultMode = { kind: 'pass' };
  /** Connections accepted so far. */
  accepted = 0;

  private constructor(target: { host: string; port: number }) {
    this.#target = target;
    this.#server = net.createServer({ pauseOnConnect: false }, (socket) => this.#accept(socket));
  }

  /** Starts a proxy in front of `target` (a `postgres://` URL or host and port). */
  static async start(target: string | { host: string; port: number }): Promise<FaultProxy> {
    const to =
      typeof target === 'string'
        ? { host: new URL(target).hostname, port: Number(new URL(target).port || 5432) }
        : target;
    const proxy = new FaultProxy(to);
    await new Promise<void>((resolve) => proxy.#server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  /** The port the proxy listens on. */
  get port(): number {
    return (this.#server.address() as net.AddressInfo).port;
  }

  /** `url` (a postgres:// URL of the proxied server) rewritten to go through the proxy. */
  url(url: string): string {
    const parsed = new URL(url);
    parsed.hostname = '127.0.0.1';
    parsed.port = String(this.port);
    return parsed.toString();
  }

  /** The current mode. */
  get mode(): FaultMode {
    return this.#mode;
  }

  /** Connections currently carried. */
  get open(): number {
    return this.#links.size;
  }

  /** Switches the mode; existing connections follow it from their next chunk. */
  set(mode: FaultMode): void {
    this.#mode = mode;
  }

  pass(): void {
    this.set({ kind: 'pass' });
  }

  latency(ms: number): void {
    this.set({ kind: 'latency', ms });
  }

  blackhole(): void {
    this.set({ kind: 'blackhole' });
  }

  reset(): void {
    this.set({ kind: 'reset' });
  }

  slowClose(ms: number): void {
    this.set({ kind: 'slowClose', ms });
  }

  /** Kills every carried connection: with a TCP RST (`reset`) or a FIN on both sides (`close`). */
  killAll(how: 'reset' | 'close' = 'reset'): void {
    for (const link of [...this.#links]) this.#kill(link, how);
  }

  #kill(link: Link, how: 'reset' | 'close'): void {
    if (link.closed) return;
    link.closed = true;
    this.#links.delete(link);
    for (const socket of [link.client, link.server]) {
      if (how === 'reset') {
        if (!socket.destroyed) socket.resetAndDestroy();
      } else socket.end();
      socket.on('error', () => undefined);
      setTimeout(() => socket.destroy(), 5_000).unref();
    }
  }

  #accept(client: net.Socket): void {
    this.accepted++;
    client.on('error', () => undefined);
    if (this.#mode.kind === 'reset') {
      client.resetAndDestroy();
      return;
    }
    const server = net.connect(this.#target);
    server.on('error', () => undefined);
    const link: Link = { client, server, closed: false };
    this.#links.add(link);
    client.setNoDelay(true);
    server.setNoDelay(true);
    this.#pipe(link, client, server);
    this.#pipe(link, server, client);
  }

  /** Forwards `from` → `to` under the mode in force when each chunk arrives. */
  #pipe(link: Link, from: net.Socket, to: net.Socket): void {
    // Latency keeps order: each chunk leaves no earlier than the one before it.
    let lastDue = 0;
    from.on('data', (chunk: Buffer) => {
      if (link.closed) return;
      const mode = this.#mode;
      switch (mode.kind) {
        case 'pass':
        case 'slowClose':
          if (lastDue > Date.now()) this.#later(lastDue, link, to, chunk);
          else to.write(chunk);
          return;
        case 'latency':
          lastDue = Math.max(lastDue, Date.now() + mode.ms);
          this.#later(lastDue, link, to, chunk);
          return;
        case 'blackhole':
          return;
        case 'reset':
          this.#kill(link, 'reset');
          return;
      }
    });
    const onEnd = () => {
      if (link.closed) return;
      const mode = this.#mode;
      if (mode.kind === 'blackhole') return; // a dead middlebox passes no FIN either
      const delay = mode.kind === 'slowClose' ? mode.ms : Math.max(0, lastDue - Date.now());
      const finish = () => {
        if (link.closed) return;
        link.closed = true;
        this.#links.delete(link);
        to.end();
        from.end();
        setTimeout(() => {
          to.destroy();
          from.destroy();
        }, 5_000).unref();
      };
      if (delay > 0) setTimeout(finish, delay).unref();
      else finish();
    };
    from.on('end', onEnd);
    from.on('close', onEnd);
  }

  #later(due: number, link: Link, to: net.Socket, chunk: Buffer): void {
    setTimeout(
      () => {
        if (!link.closed && this.#mode.kind !== 'blackhole') to.write(chunk);
      },
      Math.max(0, due - Date.now()),
    ).unref();
  }

  /** Stops listening and kills every connection. */
  async close(): Promise<void> {
    this.killAll('reset');
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
