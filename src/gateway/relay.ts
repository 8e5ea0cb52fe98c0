import { TenantryError } from '../errors.js';
import type { Lease } from '../pool/index.js';
import { BackendLink } from './backend-link.js';
import { Framer } from './framer.js';
import { failHeld } from './held-frames.js';
import { errorResponse, query, readyForQuery } from './protocol.js';
import { RelayBackendSide, type RelayOptions } from './relay-backend.js';
import type { Entry } from './response-queue.js';
import { settingsDiff } from './startup-params.js';
import { StatementRouter } from './statement-router.js';
import { settingsKey } from './statements.js';

const IDENTITY_ERRORS = /TENANTRY_ERR_(AUTH|TOKEN_|TENANT_DISABLED|TENANT_LOCKED|TENANT_NOT_FOUND)/;
/** While waiting for a backend, the client's socket is paused once this much is held. */
const HOLD_PAUSE_BYTES = 1 << 20;
const HOLD_PAUSE_FRAMES = 1024;

/**
 * Relays one authenticated client's messages to a backend of the pool of pools: a backend is
 * checked out when a transaction starts — synchronously when the tenant's pool has one idle,
 * which is the common case — and given back when ReadyForQuery says idle with nothing owed
 * (transaction mode), or at disconnect (session mode). This is the client half; the backend
 * half is {@link RelayBackendSide}.
 */
export class TransactionRelay extends RelayBackendSide {
  #framer: Framer;
  readonly #statements: StatementRouter;
  /** settingsKey of `wanted`: a backend that already carries them needs no SET. */
  readonly #wantedKey: string;
  readonly #send = (bytes: Buffer): void => this.toBackend.add(bytes);
  #acquiring = false;
  /** The client's socket was paused because too much was held while waiting for a backend. */
  #holdPaused = false;
  #skipUntilSync = false;
  #validatedAt = Date.now();
  /** Transactions served (backend checkouts). */
  transactions = 0;

  constructor(options: RelayOptions) {
    super(options);
    this.#framer = new Framer(options.settings.maxMessageBytes);
    this.#statements = new StatementRouter(options.settings, this.queue, {
      inject: this.#send,
      markDirty: () => void (this.dirty = true),
      refuse: (message, simple) => this.#refuse(message, simple),
    });
    this.#wantedKey = settingsKey(options.wanted);
  }

  protected forget(entry: Entry): void {
    this.#statements.forget(entry, this.backend);
  }

  /** Takes over bytes the login phase already framed-buffered. */
  adoptFramer(framer: Framer): void {
    this.#framer = framer;
    this.onClientData(Buffer.alloc(0));
  }

  onClientData(chunk: Buffer): void {
    if (chunk.length > 0) this.#framer.push(chunk);
    for (let frame = this.#framer.next(); frame && !this.gone; frame = this.#framer.next())
      this.#onClientFrame(frame);
    this.flush();
    // Checked out at once for messages that turned out to need no answer from it: give it back.
    if (this.releasable()) this.detach();
  }

  #onClientFrame(frame: Buffer): void {
    if (this.backend === undefined && (this.#acquiring || this.held.length > 0)) {
      this.#hold(frame); // in order, behind the messages waiting for the backend being checked out
      return;
    }
    const type = frame[0];
    if (type === 0x58 /* X */) {
      this.o.terminate();
      return;
    }
    if (this.#skipUntilSync) {
      if (type !== 0x53 /* S */) return;
      this.#skipUntilSync = false;
    }
    if (this.txStarted < 0) this.txStarted = performance.now();
    if (this.backend === undefined) {
      if (this.#answerLocally(frame)) return;
      // The common case: the tenant's pool has an idle backend, checked out synchronously.
      const lease = this.#checkoutNow();
      if (lease === undefined) {
        this.#hold(frame);
        this.#acquire().catch((error: unknown) =>
          this.o.fatal('08P01', `protocol violation: ${String(error)}`),
        );
        return;
      }
      this.#attach(lease);
    }
    this.#forward(frame);
  }

  #hold(frame: Buffer): void {
    this.held.push(frame);
    if (!this.#holdPaused && (this.held.bytes >= HOLD_PAUSE_BYTES || this.held.length >= HOLD_PAUSE_FRAMES)) {
      this.#holdPaused = true;
      this.o.client.pause();
    }
  }

  /** A lease at once when no identity re-check is due and the pool can serve now, else undefined. */
  #checkoutNow(): Lease | undefined {
    if (this.gone || Date.now() - this.#validatedAt > this.o.settings.revalidateMs) return undefined;
    return this.o.host.tryAcquire(this.o.route.target);
  }

  /** Messages that need no backend when none is attached: Sync, Flush, Close of a statement. */
  #answerLocally(frame: Buffer): boolean {
    switch (frame[0]) {
      case 0x53 /* S */:
        this.toClient.add(readyForQuery('I'));
        return true;
      case 0x48 /* H */:
        return true;
      case 0x43 /* C */:
        return this.#statements.closeLocally(frame, (bytes) => this.toClient.add(bytes));
      default:
        return false;
    }
  }

  #forward(frame: Buffer): void {
    const type = String.fromCharCode(frame[0] ?? 0);
    const session = (this.backend as BackendLink).session;
    // Extended-protocol messages leave the backend mid-batch until a Sync: never hand it over then.
    if ('PBDECH'.includes(type)) this.unsynced = true;
    else if (type === 'S' || type === 'Q') this.unsynced = false;
    switch (type) {
      case 'Q':
      case 'P':
      case 'B':
      case 'D':
      case 'C':
        this.#statements.route(type, frame, session, this.#send);
        break;
      case 'F':
        // A FunctionCall names a function by oid, past the SQL guard (set_config, a temp-table
        // maker…): whatever it leaves on the session is reset before anyone else gets the backend.
        this.dirty = true;
        this.queue.push({ kind: type, swallow: false });
        this.toBackend.add(frame);
        break;
      case 'E':
      case 'S':
        this.queue.push({ kind: type, swallow: false });
        this.toBackend.add(frame);
        break;
      case 'H':
      case 'd':
      case 'c':
      case 'f':
        this.toBackend.add(frame);
        break;
      default:
        this.o.fatal('08P01', `protocol violation: unexpected message type ${JSON.stringify(type)}`);
        return;
    }
    this.emitSynthetic();
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
    this.queue.push({ kind: simple ? 'Q' : 'P', swallow: false, synthetic: error, readyAfter: simple });
    if (!simple) this.#skipUntilSync = true;
  }

  /** Checks a backend out the slow way (identity re-check due, or the pool must wait or connect). */
  async #acquire(): Promise<void> {
    if (this.#acquiring || this.gone) return;
    this.#acquiring = true;
    let lease: Lease;
    try {
      if (Date.now() - this.#validatedAt > this.o.settings.revalidateMs) {
        await this.o.identity.revalidate();
        this.#validatedAt = Date.now();
      }
      lease = await this.o.host.acquire(this.o.route.target);
    } catch (error) {
      this.#acquiring = false;
      this.#resumeHeld();
      if (error instanceof TenantryError && IDENTITY_ERRORS.test(error.code)) {
        this.o.fatal('28000', `${error.code}: ${error.message}`);
      } else this.#failHeld(error);
      return;
    }
    this.#acquiring = false;
    if (this.gone) {
      lease.release();
      return;
    }
    this.#resumeHeld();
    this.#attach(lease);
    for (const frame of this.held.take()) if (!this.gone) this.#onClientFrame(frame);
    this.flush();
    if (this.releasable()) this.detach(); // nothing owed (only refused statements): give it back
  }

  #resumeHeld(): void {
    if (!this.#holdPaused) return;
    this.#holdPaused = false;
    this.o.client.resume();
  }

  #attach(lease: Lease): void {
    this.transactions++;
    this.backendFramer.reset();
    const link = new BackendLink(lease, this.sink);
    this.backend = link;
    const session = link.session;
    if (session.appliedKey !== this.#wantedKey) {
      const diff = settingsDiff(session.applied, this.o.wanted);
      if (diff) {
        this.queue.push({ kind: 'Q', swallow: true });
        this.toBackend.add(query(diff));
      }
      session.applied.clear();
      for (const [name, value] of this.o.wanted) session.applied.set(name, value);
      session.appliedKey = this.#wantedKey;
    }
  }

  /** Answers held messages with the checkout error (as PostgreSQL would answer a failed statement). */
  #failHeld(error: unknown): void {
    const failure = failHeld(this.held.take(), error);
    for (const reply of failure.replies) this.toClient.add(reply);
    this.#skipUntilSync = failure.skipUntilSync;
    this.flush();
    if (failure.terminate) this.o.terminate();
  }
}
