import net from 'node:net';
import type pg from 'pg';
import type { Lease } from '../pool/index.js';
import { cancelRequest } from './protocol.js';
import { backendSession, forgetBackendSession, type BackendSession } from './statements.js';

type DataListener = (chunk: Buffer) => void;

interface ClientInternals {
  connection: { stream: net.Socket };
  processID: number | null;
  secretKey: number | null;
  host: string;
  port: number;
  _txStatus: string | null;
}

/**
 * A pooled backend connection lent to one gateway client for a transaction (or a session): the
 * gateway reads and writes its socket directly — node-postgres' parser is unhooked while it
 * does and hooked back on release, with the transaction status the gateway saw.
 */
export class BackendLink {
  readonly lease: Lease;
  readonly session: BackendSession;
  readonly #socket: net.Socket;
  readonly #saved: DataListener[];
  readonly #onData: DataListener;
  readonly #onClose: () => void;
  readonly #onSilent: (() => void) | undefined;
  #released = false;

  /**
   * `onSilent` is called when the backend socket saw no traffic for the pool's query timeout
   * (`Lease.queryTimeoutMs`, when set): the relay decides whether an answer was owed.
   */
  constructor(lease: Lease, onData: DataListener, onClose: () => void, onSilent?: () => void) {
    this.lease = lease;
    this.session = backendSession(lease.client);
    const internals = lease.client as unknown as ClientInternals;
    this.#socket = internals.connection.stream;
    this.#saved = this.#socket.listeners('data') as DataListener[];
    this.#socket.removeAllListeners('data');
    this.#onData = onData;
    this.#onClose = onClose;
    this.#socket.on('data', onData);
    this.#socket.on('close', onClose);
    if (onSilent && (lease.queryTimeoutMs ?? 0) > 0) {
      this.#onSilent = onSilent;
      this.#socket.setTimeout(lease.queryTimeoutMs ?? 0);
      this.#socket.on('timeout', onSilent);
    }
  }

  #unhook(): void {
    this.#socket.removeListener('data', this.#onData);
    this.#socket.removeListener('close', this.#onClose);
    if (this.#onSilent) {
      this.#socket.setTimeout(0);
      this.#socket.removeListener('timeout', this.#onSilent);
    }
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
    for (const listener of this.#saved) this.#socket.on('data', listener);
    this.#socket.resume(); // paused for a slow client: never hand a paused backend to the next user
    const internals = this.lease.client as unknown as ClientInternals;
    internals._txStatus = status;
    if (dirty || status !== 'I') {
      forgetBackendSession(this.lease.client);
      this.lease.markDirty();
    }
    this.lease.release();
  }

  /** Discards the connection (its state is unknown: a client vanished mid-response). */
  discard(): void {
    if (this.#released) return;
    forgetBackendSession(this.lease.client);
    this.lease.markBroken();
    this.#unhook();
    for (const listener of this.#saved) this.#socket.on('data', listener);
    this.#socket.resume(); // else a paused socket never reads the EOF of its close
    this.#released = true;
    this.lease.release();
  }

  /** Asks PostgreSQL to cancel what this backend is running (a CancelRequest on a new socket). */
  cancel(): void {
    const client = this.lease.client as unknown as ClientInternals & pg.Client;
    if (client.processID === null || client.secretKey === null) return;
    const packet = cancelRequest(client.processID, client.secretKey);
    const target = client.host.startsWith('/')
      ? { path: `${client.host}/.s.PGSQL.${client.port}` }
      : { host: client.host, port: client.port };
    const socket = net.connect(target, () => socket.end(packet));
    socket.on('error', () => socket.destroy());
    socket.setTimeout(5_000, () => socket.destroy());
  }
}
