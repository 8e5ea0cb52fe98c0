import net from 'node:net';
import type pg from 'pg';
import type { Lease } from '../pool/index.js';
import { cancelRequest } from './protocol.js';
import { backendSession, forgetBackendSession, type BackendSession } from './statements.js';

type DataListener = (this: net.Socket, chunk: Buffer) => void;

interface ClientInternals {
  connection: { stream: net.Socket };
  processID: number | null;
  secretKey: number | null;
  host: string;
  port: number;
  _txStatus: string | null;
}

/** What receives a backend's traffic while a gateway client holds it. */
export interface BackendSink {
  onBackendData(chunk: Buffer): void;
  onBackendClose(): void;
  /** The socket saw no traffic for the pool's query timeout. */
  onBackendSilent(): void;
}

const PORT = Symbol('tenantry.gatewayPort');
const CANCEL_TIMEOUT_MS = 5_000;

/**
 * The gateway's permanent hook on one pooled backend socket, installed the first time the
 * gateway checks the backend out: one `data` listener (and one `close`, one `timeout`) for the
 * backend's lifetime, dispatching to the sink that holds the backend, or to node-postgres' own
 * parser when none does (the pool's reset, library use of the same connection). No listener is
 * added or removed per transaction.
 */
class BackendPort {
  readonly socket: net.Socket;
  readonly #parser: DataListener[];
  sink: BackendSink | undefined;

  constructor(socket: net.Socket) {
    this.socket = socket;
    this.#parser = socket.listeners('data') as DataListener[];
    socket.removeAllListeners('data');
    socket.on('data', (chunk: Buffer) => {
      const sink = this.sink;
      if (sink) sink.onBackendData(chunk);
      else for (const listener of this.#parser) listener.call(socket, chunk);
    });
    socket.on('close', () => this.sink?.onBackendClose());
    socket.on('timeout', () => this.sink?.onBackendSilent());
  }

  static of(client: pg.Client): BackendPort {
    const holder = client as pg.Client & { [PORT]?: BackendPort };
    let port = holder[PORT];
    if (!port) {
      port = new BackendPort((client as unknown as ClientInternals).connection.stream);
      holder[PORT] = port;
    }
    return port;
  }
}

/**
 * A pooled backend connection lent to one gateway client for a transaction (or a session): the
 * gateway reads and writes its socket directly — node-postgres' parser gets no bytes while the
 * sink holds it, and on release the pool gets the transaction status the gateway saw.
 */
export class BackendLink {
  readonly lease: Lease;
  readonly session: BackendSession;
  readonly #port: BackendPort;
  readonly #socket: net.Socket;
  #timed = false;
  #released = false;
  /** CancelRequests sent and not yet closed by PostgreSQL. */
  #cancelling = 0;
  /** A CancelRequest went unanswered: its signal may still come, so the backend is not reused. */
  #cancelUnsure = false;
  /** The pool gets the backend back once no cancel is in flight. */
  #giveBack: (() => void) | undefined;

  constructor(lease: Lease, sink: BackendSink) {
    this.lease = lease;
    this.session = backendSession(lease.client);
    this.#port = BackendPort.of(lease.client);
    this.#socket = this.#port.socket;
    this.#port.sink = sink;
    const timeout = lease.queryTimeoutMs ?? 0;
    if (timeout > 0) {
      this.#timed = true;
      this.#socket.setTimeout(timeout);
    }
  }

  #unhook(): void {
    this.#port.sink = undefined;
    if (this.#timed) this.#socket.setTimeout(0);
    // Paused for a slow client: never hand a paused backend to the next user (and a paused
    // socket never reads the EOF of its close).
    if (this.#socket.isPaused()) this.#socket.resume();
  }

  /** Writes to the backend; false when its buffer is full (wait for {@link onDrain}). */
  write(bytes: Buffer): boolean {
    return this.#socket.write(bytes);
  }

  /** Calls `fn` once the backend's write buffer drained. */
  onDrain(fn: () => void): void {
    this.#socket.once('drain', fn);
  }

  pause(): void {
    this.#socket.pause();
  }

  resume(): void {
    this.#socket.resume();
  }

  /**
   * Gives the connection back to the pool. `status` is the last transaction status seen (the
   * pool rolls back `T`/`E`); `dirty` asks for DISCARD ALL (session state may be left) and
   * forgets the gateway's record of the backend's prepared statements and settings.
   */
  release(status: 'I' | 'T' | 'E', dirty: boolean): void {
    if (this.#released) return;
    this.#released = true;
    this.#unhook();
    const internals = this.lease.client as unknown as ClientInternals;
    internals._txStatus = status;
    if (dirty || status !== 'I') {
      forgetBackendSession(this.lease.client);
      this.lease.markDirty();
    }
    this.#returnLease();
  }

  /**
   * Returns the lease — after any CancelRequest in flight was handled. PostgreSQL's cancel
   * signals the backend (twice: the process and its group) only when it gets to it; a backend
   * handed on before that could have the next statement cancelled, maybe another client's.
   * PgBouncer keeps such a server out of the pool for the same reason.
   */
  #returnLease(): void {
    const giveBack = (): void => {
      if (this.#cancelUnsure) this.lease.markBroken();
      this.lease.release();
    };
    if (this.#cancelling > 0) this.#giveBack = giveBack;
    else giveBack();
  }

  /** Discards the connection (its state is unknown: a client vanished mid-response). */
  discard(): void {
    if (this.#released) return;
    this.#released = true;
    forgetBackendSession(this.lease.client);
    this.lease.markBroken();
    this.#unhook();
    this.#returnLease();
  }

  /** Asks PostgreSQL to cancel what this backend is running (a CancelRequest on a new socket). */
  cancel(): void {
    const client = this.lease.client as unknown as ClientInternals & pg.Client;
    if (client.processID === null || client.secretKey === null) return;
    const packet = cancelRequest(client.processID, client.secretKey);
    const target = client.host.startsWith('/')
      ? { path: `${client.host}/.s.PGSQL.${client.port}` }
      : { host: client.host, port: client.port };
    this.#cancelling++;
    const socket = net.connect(target, () => socket.end(packet));
    socket.on('error', () => {
      this.#cancelUnsure = true;
      socket.destroy();
    });
    socket.setTimeout(CANCEL_TIMEOUT_MS, () => {
      this.#cancelUnsure = true;
      socket.destroy();
    });
    // PostgreSQL closes the socket once it has signalled the backend.
    socket.once('close', () => {
      if (--this.#cancelling > 0) return;
      const giveBack = this.#giveBack;
      this.#giveBack = undefined;
      giveBack?.();
    });
  }
}
