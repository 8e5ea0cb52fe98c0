import type net from 'node:net';
import { TenantryError } from '../errors.js';
import type { Lease } from '../pool/index.js';
import type { TenantRoute } from '../session/index.js';
import type { GatewayIdentity } from './authenticate.js';
import { BackendLink } from './backend-link.js';
import type { ConnectionSettings } from './client-connection.js';
import { Framer, FrameBatch } from './framer.js';
import type { GatewayHost } from './host.js';
import { errorResponse, query, readyForQuery } from './protocol.js';
import { ResponseQueue, type Entry } from './response-queue.js';
import { settingsDiff } from './startup-params.js';
import { StatementRouter } from './statement-router.js';

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
const IDENTITY_ERRORS = /TENANTRY_ERR_(AUTH|TOKEN_|TENANT_DISABLED|TENANT_LOCKED|TENANT_NOT_FOUND)/;

/**
 * Relays one authenticated client's messages to a backend of the pool of pools: a backend is
 * checked out when a transaction starts and given back when ReadyForQuery says idle with nothing
 * owed (transaction mode), or at disconnect (session mode).
 */
export class TransactionRelay {
  readonly #o: RelayOptions;
  #framer: Framer;
  #backend: BackendLink | undefined;
  #backendFramer = new Framer(MAX_BACKEND_MESSAGE);
  readonly #queue = new ResponseQueue();
  readonly #statements: StatementRouter;
  readonly #toBackend = new FrameBatch();
  readonly #toClient = new FrameBatch();
  #held: Buffer[] = [];
  #acquiring = false;
  #status: 'I' | 'T' | 'E' = 'I';
  #dirty = false;
  /** The attached backend is going away (an error after the transaction ended): discard, never reuse. */
  #dying = false;
  #skipUntilSync = false;
  #gone = false;
  #onIdle: (() => void) | undefined;
  #validatedAt = Date.now();
  /** Transactions served (backend checkouts). */
  transactions = 0;
  /** When the transaction in progress started (hrtime ns), and whether it saw an error. */
  #txStarted: bigint | undefined;
  #txFailed = false;
  /** Extended-protocol messages went to the backend since the last Sync (or Query). */
  #unsynced = false;

  constructor(options: RelayOptions) {
    this.#o = options;
    this.#framer = new Framer(options.settings.maxMessageBytes);
    this.#statements = new StatementRouter(options.settings, this.#queue, {
      inject: (bytes) => this.#toBackend.add(bytes),
      markDirty: () => void (this.#dirty = true),
      refuse: (message, simple) => this.#refuse(message, simple),
    });
  }

  /** No backend attached and nothing pending. */
  get idle(): boolean {
    return this.#backend === undefined && this.#held.length === 0;
  }

  /** Whether a backend is attached. */
  get attached(): boolean {
    return this.#backend !== undefined;
  }

  /** Takes over bytes the login phase already framed-buffered. */
  adoptFramer(framer: Framer): void {
    this.#framer = framer;
    this.onClientData(Buffer.alloc(0));
  }

  onClientData(chunk: Buffer): void {
    if (chunk.length > 0) this.#framer.push(chunk);
    for (let frame = this.#framer.next(); frame && !this.#gone; frame = this.#framer.next())
      this.#onClientFrame(frame);
    this.#flush();
  }

  #onClientFrame(frame: Buffer): void {
    const type = frame[0];
    if (type === 0x58 /* X */) {
      this.#o.terminate();
      return;
    }
    if (this.#skipUntilSync) {
      if (type !== 0x53 /* S */) return;
      this.#skipUntilSync = false;
    }
    this.#txStarted ??= process.hrtime.bigint();
    if (!this.#backend) {
      if (this.#held.length === 0 && !this.#acquiring && this.#answerLocally(frame)) return;
      this.#held.push(frame);
      this.#acquire().catch((error: unknown) =>
        this.#o.fatal('08P01', `protocol violation: ${String(error)}`),
      );
      return;
    }
    this.#forward(frame);
  }

  /** Messages that need no backend when none is attached: Sync, Flush, Close of a statement. */
  #answerLocally(frame: Buffer): boolean {
    switch (frame[0]) {
      case 0x53 /* S */:
        this.#toClient.add(readyForQuery('I'));
        return true;
      case 0x48 /* H */:
        return true;
      case 0x43 /* C */:
        return this.#statements.closeLocally(frame, (bytes) => this.#toClient.add(bytes));
      default:
        return false;
    }
  }

  #forward(frame: Buffer): void {
    const type = String.fromCharCode(frame[0] ?? 0);
    const session = (this.#backend as BackendLink).session;
    // Extended-protocol messages leave the backend mid-batch until a Sync: never hand it over then.
    if ('PBDECH'.includes(type)) this.#unsynced = true;
    else if (type === 'S' || type === 'Q') this.#unsynced = false;
    switch (type) {
      case 'Q':
      case 'P':
      case 'B':
      case 'D':
      case 'C':
        this.#statements.route(type, frame, session, (bytes) => this.#toBackend.add(bytes));
        break;
      case 'E':
      case 'S':
      case 'F':
        this.#queue.push({ kind: type, swallow: false });
        this.#toBackend.add(frame);
        break;
      case 'H':
      case 'd':
      case 'c':
      case 'f':
        this.#toBackend.add(frame);
        break;
      default:
        this.#o.fatal('08P01', `protocol violation: unexpected message type ${JSON.stringify(type)}`);
        return;
    }
    this.#emitSynthetic();
  }

  /**
   * A statement the gateway refuses: an error in its place. A refused simple query ends with
   * ReadyForQuery; after a refused Parse the rest of the batch is dropped up to its Sync, as
   * PostgreSQL skips messages after an error. (The backend never saw the statement, so an open
   * transaction is not marked failed.)
   */
  #refuse(message: string, simple: boolean): void {
    const error = errorResponse({
      severity: 'ERROR',
      code: '42501',
      message: `TENANTRY_ERR_FORBIDDEN: ${message}`,
    });
    this.#queue.push({ kind: simple ? 'Q' : 'P', swallow: false, synthetic: error, readyAfter: simple });
    if (!simple) this.#skipUntilSync = true;
  }

  #emitSynthetic(): void {
    for (let head = this.#queue.head; head?.synthetic && !this.#queue.skipping; head = this.#queue.head) {
      this.#queue.shift();
      this.#toClient.add(head.synthetic);
      if (head.readyAfter) this.#toClient.add(readyForQuery(this.#status));
    }
  }

  async #acquire(): Promise<void> {
    if (this.#acquiring || this.#gone) return;
    this.#acquiring = true;
    this.#o.client.pause();
    let lease: Lease;
    try {
      if (Date.now() - this.#validatedAt > this.#o.settings.revalidateMs) {
        await this.#o.identity.revalidate();
        this.#validatedAt = Date.now();
      }
      lease = await this.#o.host.acquire(this.#o.route.target);
    } catch (error) {
      this.#acquiring = false;
      this.#o.client.resume();
      if (error instanceof TenantryError && IDENTITY_ERRORS.test(error.code)) {
        this.#o.fatal('28000', `${error.code}: ${error.message}`);
      } else this.#failHeld(error);
      return;
    }
    this.#acquiring = false;
    if (this.#gone) {
      lease.release();
      return;
    }
    this.#o.client.resume();
    this.#attach(lease);
    const held = this.#held;
    this.#held = [];
    for (const frame of held) if (!this.#gone) this.#onClientFrame(frame);
    this.#flush();
    if (this.#releasable()) this.#detach(); // nothing owed (only refused statements): give it back
  }

  #attach(lease: Lease): void {
    this.transactions++;
    this.#backendFramer = new Framer(MAX_BACKEND_MESSAGE);
    const link = new BackendLink(
      lease,
      (chunk) => this.#onBackendData(chunk),
      () => this.#backendLost(),
      () => this.#backendSilent(lease.queryTimeoutMs ?? 0),
    );
    this.#backend = link;
    const diff = settingsDiff(link.session.applied, this.#o.wanted);
    if (diff) {
      this.#queue.push({ kind: 'Q', swallow: true });
      this.#toBackend.add(query(diff));
      link.session.applied.clear();
      for (const [name, value] of this.#o.wanted) link.session.applied.set(name, value);
    }
  }

  /** Answers held messages with the checkout error (as PostgreSQL would answer a failed statement). */
  #failHeld(error: unknown): void {
    const failure = error instanceof TenantryError ? error : undefined;
    const response = errorResponse({
      severity: 'ERROR',
      code: failure?.sqlstate ?? '08006',
      message: failure ? `${failure.code}: ${failure.message}` : String(error),
    });
    let reported = false;
    for (const frame of this.#held) {
      const type = frame[0];
      if (type === 0x51 /* Q */ || type === 0x46 /* F */) {
        this.#toClient.add(response);
        this.#toClient.add(readyForQuery('I'));
      } else if (type === 0x53 /* S */) {
        if (!reported) this.#toClient.add(response);
        this.#toClient.add(readyForQuery('I'));
        reported = false;
        continue;
      } else if (!reported) this.#toClient.add(response);
      reported = type !== 0x51 && type !== 0x46;
    }
    this.#skipUntilSync = reported;
    this.#held = [];
    this.#flush();
  }

  #onBackendData(chunk: Buffer): void {
    try {
      this.#backendFramer.push(chunk);
      for (let frame = this.#backendFramer.next(); frame; frame = this.#backendFramer.next()) {
        this.#onBackendFrame(frame);
      }
    } catch {
      this.#backendLost();
      return;
    }
    this.#flush();
    if (this.#releasable()) this.#detach();
  }

  #onBackendFrame(frame: Buffer): void {
    const type = frame[0];
    const head = this.#queue.head;
    let forward = head?.swallow !== true;
    switch (type) {
      case 0x31 /* 1 ParseComplete */:
      case 0x32 /* 2 BindComplete */:
      case 0x33 /* 3 CloseComplete */:
        this.#queue.shift();
        break;
      case 0x54 /* T RowDescription */:
      case 0x6e /* n NoData */:
        if (head?.kind === 'D') this.#queue.shift();
        break;
      case 0x43 /* C CommandComplete */:
      case 0x49 /* I EmptyQueryResponse */:
      case 0x73 /* s PortalSuspended */:
        if (head?.kind === 'E') this.#queue.shift();
        break;
      case 0x45 /* E ErrorResponse */:
        if (this.#owesNothing()) {
          // The client's transaction is over and nothing is owed: this is the backend's own
          // farewell (FATAL 57P01 of a terminated backend, a shutdown), read in the same chunk as
          // the ReadyForQuery. It is no longer the client's to see: drop the backend instead.
          this.#dying = true;
          return;
        }
        forward = true;
        this.#txFailed = true;
        if (head && head.kind !== 'Q' && head.kind !== 'F') {
          this.#statements.forget(this.#queue.shift() as Entry, this.#backend);
          this.#queue.dropUntilSync((entry) => this.#statements.forget(entry, this.#backend));
        }
        break;
      case 0x5a /* Z ReadyForQuery */: {
        const done = this.#queue.popThroughSync((entry) => this.#statements.forget(entry, this.#backend));
        forward = done?.swallow !== true;
        this.#status = String.fromCharCode(frame[5] ?? 0x49) as 'I' | 'T' | 'E';
        if (this.#status === 'I' && this.#queue.empty) this.#observe();
        break;
      }
      case 0x53 /* S ParameterStatus */:
        // The client changed a reported setting: the backend must be reset before reuse.
        if (forward) this.#dirty = true;
        break;
      default:
        break;
    }
    if (forward) this.#toClient.add(frame);
    this.#emitSynthetic();
  }

  /** Records the transaction that just ended in the tenant metrics. */
  #observe(): void {
    const started = this.#txStarted;
    if (started === undefined) return;
    const tenant = (this.#o.identity.effective ?? this.#o.identity.tenant).name;
    this.#o.host.observe(tenant, Number(process.hrtime.bigint() - started) / 1e9, !this.#txFailed);
    this.#txStarted = undefined;
    this.#txFailed = false;
  }

  /** Between transactions in transaction mode: the attached backend owes the client nothing. */
  #owesNothing(): boolean {
    return (
      this.#o.settings.poolMode === 'transaction' &&
      this.#status === 'I' &&
      this.#queue.empty &&
      this.#held.length === 0 &&
      !this.#unsynced
    );
  }

  #releasable(): boolean {
    return (
      this.#backend !== undefined &&
      this.#o.settings.poolMode === 'transaction' &&
      this.#status === 'I' &&
      this.#queue.empty &&
      this.#held.length === 0 &&
      !this.#unsynced &&
      !this.#queue.skipping &&
      this.#backendFramer.pending === 0
    );
  }

  #detach(): void {
    const link = this.#backend;
    if (!link) return;
    this.#backend = undefined;
    if (this.#dying) link.discard();
    else link.release(this.#status, this.#dirty);
    this.#dirty = false;
    this.#dying = false;
    this.#unsynced = false;
    this.#status = 'I';
    const onIdle = this.#onIdle;
    if (onIdle && this.idle) {
      this.#onIdle = undefined;
      onIdle();
    }
  }

  #flush(): void {
    if (!this.#toClient.empty && !this.#o.client.destroyed) {
      if (!this.#o.client.write(this.#toClient.take()) && this.#backend) {
        const link = this.#backend;
        link.pause();
        this.#o.client.once('drain', () => link.resume());
      }
    }
    if (!this.#toBackend.empty && this.#backend) {
      if (!this.#backend.write(this.#toBackend.take())) {
        this.#o.client.pause();
        this.#backend.onDrain(() => this.#o.client.resume());
      }
    }
  }

  #backendLost(message = 'the server connection was lost'): void {
    const link = this.#backend;
    if (!link) return;
    this.#backend = undefined;
    this.#queue.clear();
    link.discard();
    this.#o.fatal('08006', message);
  }

  /**
   * The backend said nothing for the pool's query timeout. While an answer is owed that is a
   * dead path to PostgreSQL (a silent network, a hung server): the client gets an error instead
   * of waiting forever. An idle transaction (the client thinking) is left alone.
   */
  #backendSilent(ms: number): void {
    if (this.#queue.empty && !this.#unsynced) return;
    this.#o.host.logger.warn({ ms }, 'gateway backend did not answer; dropping it');
    this.#backendLost(`TENANTRY_ERR_CONNECTION_LOST: PostgreSQL did not answer within ${ms} ms`);
  }

  /** Cancels the statement the attached backend is running, if any. */
  cancel(): void {
    this.#backend?.cancel();
  }

  /** Calls `fn` once no transaction is in progress (graceful shutdown). */
  closeWhenIdle(fn: () => void): void {
    if (this.idle) fn();
    else this.#onIdle = fn;
  }

  /** The client went away: give the backend back (clean) or discard it (mid-response). */
  clientGone(): void {
    this.#gone = true;
    const link = this.#backend;
    if (!link) return;
    this.#backend = undefined;
    const clean =
      this.#queue.empty && !this.#unsynced && !this.#queue.skipping && this.#backendFramer.pending === 0;
    if (clean) link.release(this.#status, this.#dirty);
    else link.discard();
  }
}
