import type net from 'node:net';
import type { TenantRoute } from '../session/index.js';
import type { GatewayIdentity } from './authenticate.js';
import type { BackendLink, BackendSink } from './backend-link.js';
import type { ConnectionSettings } from './client-connection.js';
import { Framer, FrameBatch } from './framer.js';
import { HeldFrames } from './held-frames.js';
import type { GatewayHost } from './host.js';
import { readyForQuery } from './protocol.js';
import { ResponseQueue, type Entry } from './response-queue.js';

/** What a relay needs from its connection. */
export interface RelayOptions {
  readonly client: net.Socket;
  readonly host: GatewayHost;
  readonly settings: ConnectionSettings;
  readonly route: TenantRoute;
  /** Tracked session parameters every backend must carry for this client. */
  readonly wanted: ReadonlyMap<string, string>;
  readonly identity: GatewayIdentity;
  fatal(code: string, message: string): void;
  /** The client said goodbye (Terminate): close without a word. */
  terminate(): void;
}

const MAX_BACKEND_MESSAGE = 1 << 30;

/**
 * The backend half of a client's relay (see relay.ts for the client half): the state of the
 * attached backend, its responses — forwarded, hidden (answers to injected messages) or
 * completed with the gateway's own — and when it goes back to the pool: at ReadyForQuery idle
 * with nothing owed (transaction mode), or at disconnect.
 */
export abstract class RelayBackendSide {
  protected readonly o: RelayOptions;
  protected backend: BackendLink | undefined;
  protected readonly backendFramer = new Framer(MAX_BACKEND_MESSAGE);
  protected readonly queue = new ResponseQueue();
  protected readonly toBackend = new FrameBatch();
  protected readonly toClient = new FrameBatch();
  /** Frames the client sent while waiting for a backend. */
  protected readonly held = new HeldFrames();
  protected readonly sink: BackendSink;
  protected status: 'I' | 'T' | 'E' = 'I';
  protected dirty = false;
  /** The attached backend is going away (an error after the transaction ended): discard, never reuse. */
  protected dying = false;
  protected gone = false;
  /** Extended-protocol messages went to the backend since the last Sync (or Query). */
  protected unsynced = false;
  /** When the transaction in progress started (performance.now() ms, -1: none), and whether it saw an error. */
  protected txStarted = -1;
  protected txFailed = false;
  /** The client asked to cancel while only the gateway's own messages ran (or none yet). */
  #cancelWanted = false;
  #onIdle: (() => void) | undefined;
  readonly #forget = (entry: Entry): void => this.forget(entry);

  constructor(options: RelayOptions) {
    this.o = options;
    this.sink = {
      onBackendData: (chunk) => this.#onBackendData(chunk),
      onBackendClose: () => this.backendLost(),
      onBackendSilent: () => this.#backendSilent(),
    };
  }

  /** An owed Parse the backend skipped or refused: the statement is not prepared there. */
  protected abstract forget(entry: Entry): void;

  /** No backend attached and nothing pending. */
  get idle(): boolean {
    return this.backend === undefined && this.held.length === 0;
  }

  /** Whether a backend is attached. */
  get attached(): boolean {
    return this.backend !== undefined;
  }

  #onBackendData(chunk: Buffer): void {
    const framer = this.backendFramer;
    try {
      framer.push(chunk);
      for (let length = framer.frameLength(); length > 0; length = framer.frameLength()) {
        const start = framer.offset;
        framer.skip(length);
        this.#onBackendFrame(framer.buffer, start, start + length);
      }
    } catch {
      this.backendLost();
      return;
    }
    this.flush();
    if (this.releasable()) this.detach();
  }

  /** One backend message, `buffer[start, end)`. */
  #onBackendFrame(buffer: Buffer, start: number, end: number): void {
    const type = buffer[start];
    const head = this.queue.head;
    let forward = head?.swallow !== true;
    switch (type) {
      case 0x31 /* 1 ParseComplete */:
      case 0x32 /* 2 BindComplete */:
      case 0x33 /* 3 CloseComplete */:
        this.queue.shift();
        break;
      case 0x54 /* T RowDescription */:
      case 0x6e /* n NoData */:
        if (head?.kind === 'D') this.queue.shift();
        break;
      case 0x43 /* C CommandComplete */:
      case 0x49 /* I EmptyQueryResponse */:
      case 0x73 /* s PortalSuspended */:
        if (head?.kind === 'E') this.queue.shift();
        break;
      case 0x45 /* E ErrorResponse */:
        if (head?.swallow === true && head.kind === 'Q') {
          // The client's settings (SET before its statement) failed: its statement is already on
          // the way, an error here would be one answer too many. End the session instead (its
          // settings were checked at login: only an outside cancel or terminate gets here).
          this.backendLost('the session settings could not be applied on the server connection');
          return;
        }
        if (this.#owesNothing()) {
          // The client's transaction is over and nothing is owed: this is the backend's own
          // farewell (FATAL 57P01 of a terminated backend, a shutdown), read in the same chunk as
          // the ReadyForQuery. It is no longer the client's to see: drop the backend instead.
          this.dying = true;
          return;
        }
        forward = true;
        this.txFailed = true;
        // An error answering a Sync (a deferred constraint or a serialization failure at the
        // implicit commit) belongs to that Sync: its ReadyForQuery follows, and nothing after it
        // is skipped. Only an error of a P/B/D/E/C message skips the rest of its batch.
        if (head && head.kind !== 'Q' && head.kind !== 'F' && head.kind !== 'S') {
          this.forget(this.queue.shift() as Entry);
          this.queue.dropUntilSync(this.#forget);
        }
        break;
      case 0x5a /* Z ReadyForQuery */: {
        const done = this.queue.popThroughSync(this.#forget);
        forward = done?.swallow !== true;
        this.status = String.fromCharCode(buffer[start + 5] ?? 0x49) as 'I' | 'T' | 'E';
        if (this.status === 'I' && this.queue.empty) this.#observe();
        break;
      }
      case 0x53 /* S ParameterStatus */:
        // The client changed a reported setting: the backend must be reset before reuse.
        if (forward) this.dirty = true;
        break;
      default:
        break;
    }
    if (forward) this.toClient.addRange(buffer, start, end);
    this.emitSynthetic();
  }

  /** Answers owed by the gateway itself, once everything before them was forwarded. */
  protected emitSynthetic(): void {
    for (let head = this.queue.head; head?.synthetic && !this.queue.skipping; head = this.queue.head) {
      this.queue.shift();
      this.toClient.add(head.synthetic);
      if (head.readyAfter) this.toClient.add(readyForQuery(this.status));
    }
  }

  /** Records the transaction that just ended in the tenant metrics. */
  #observe(): void {
    const started = this.txStarted;
    if (started < 0) return;
    const tenant = (this.o.identity.effective ?? this.o.identity.tenant).name;
    this.o.host.observe(tenant, (performance.now() - started) / 1000, !this.txFailed);
    this.txStarted = -1;
    this.txFailed = false;
  }

  /** Between transactions in transaction mode: the attached backend owes the client nothing. */
  #owesNothing(): boolean {
    return (
      this.o.settings.poolMode === 'transaction' &&
      this.status === 'I' &&
      this.queue.empty &&
      this.held.length === 0 &&
      !this.unsynced
    );
  }

  protected releasable(): boolean {
    return (
      this.backend !== undefined &&
      this.#owesNothing() &&
      !this.queue.skipping &&
      this.backendFramer.pending === 0
    );
  }

  protected detach(): void {
    const link = this.backend;
    if (!link) return;
    this.backend = undefined;
    if (this.dying) link.discard();
    else link.release(this.status, this.dirty);
    this.dirty = false;
    this.dying = false;
    this.unsynced = false;
    this.#cancelWanted = false;
    this.status = 'I';
    const onIdle = this.#onIdle;
    if (onIdle && this.idle) {
      this.#onIdle = undefined;
      onIdle();
    }
  }

  protected flush(): void {
    if (this.#cancelWanted) this.#cancelWhenRunning();
    const client = this.o.client;
    if (!this.toClient.empty && !client.destroyed) {
      if (!client.write(this.toClient.take()) && this.backend) {
        const link = this.backend;
        link.pause();
        // only while this client still holds it: released, it was resumed and may serve another
        client.once('drain', () => {
          if (this.backend === link) link.resume();
        });
      }
    }
    if (!this.toBackend.empty && this.backend) {
      if (!this.backend.write(this.toBackend.take())) {
        client.pause();
        this.backend.onDrain(() => client.resume());
      }
    }
  }

  protected backendLost(message = 'the server connection was lost'): void {
    const link = this.backend;
    if (!link) return;
    this.backend = undefined;
    this.queue.clear();
    this.backendFramer.reset();
    link.discard();
    this.o.fatal('08006', message);
  }

  /**
   * The backend said nothing for the pool's query timeout. While an answer is owed that is a
   * dead path to PostgreSQL (a silent network, a hung server): the client gets an error instead
   * of waiting forever. An idle transaction (the client thinking) is left alone.
   */
  #backendSilent(): void {
    const ms = this.backend?.lease.queryTimeoutMs ?? 0;
    if (this.queue.empty && !this.unsynced) return;
    this.o.host.logger.warn({ ms }, 'gateway backend did not answer; dropping it');
    this.backendLost(`TENANTRY_ERR_CONNECTION_LOST: PostgreSQL did not answer within ${ms} ms`);
  }

  /**
   * Cancels the client's running statement. A cancel that arrives while the backend runs only
   * the gateway's own messages (the client's settings), or while the client waits for a
   * backend, is kept until the client's statement is on its way: PostgreSQL would otherwise
   * cancel the gateway's SET, not what the client meant. With nothing owed it is ignored, as
   * PostgreSQL ignores a cancel for an idle session.
   */
  cancel(): void {
    this.#cancelWanted = true;
    this.#cancelWhenRunning();
  }

  #cancelWhenRunning(): void {
    if (this.queue.empty && this.held.length === 0 && !this.unsynced) {
      this.#cancelWanted = false; // nothing running or waiting (or the checkout failed): nothing to cancel
      return;
    }
    const head = this.queue.head;
    if (!this.backend || head === undefined || head.swallow) return;
    this.#cancelWanted = false;
    this.backend.cancel();
  }

  /** Calls `fn` once no transaction is in progress (graceful shutdown). */
  closeWhenIdle(fn: () => void): void {
    if (this.idle) fn();
    else this.#onIdle = fn;
  }

  /** The client went away: give the backend back (clean) or discard it (mid-response). */
  clientGone(): void {
    this.gone = true;
    const link = this.backend;
    if (!link) return;
    this.backend = undefined;
    const clean =
      !this.dying &&
      this.queue.empty &&
      !this.unsynced &&
      !this.queue.skipping &&
      this.backendFramer.pending === 0;
    if (clean) link.release(this.status, this.dirty);
    else link.discard();
  }
}
