import { randomInt } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { TenantryError } from '../errors.js';
import { connectionLost, isConnectionError } from '../pool/index.js';
import type { TenantRoute } from '../session/index.js';
import { authenticate, type GatewayIdentity } from './authenticate.js';
import { Framer } from './framer.js';
import type { GatewayHost } from './host.js';
import {
  AUTH_OK,
  CANCEL_REQUEST,
  GSSENC_REQUEST,
  PROTOCOL_V3,
  ProtocolViolation,
  SSL_REQUEST,
  authentication,
  backendKeyData,
  errorResponse,
  parameterStatus,
  readyForQuery,
} from './protocol.js';
import { TransactionRelay } from './relay.js';
import { checkStartup, readStartupParams } from './startup-params.js';
import type { StatementNames } from './statements.js';

/** Settings every connection of one gateway shares. */
export interface ConnectionSettings {
  readonly database: string;
  readonly poolMode: 'transaction' | 'session';
  readonly maxMessageBytes: number;
  readonly secureContext: tls.SecureContext | undefined;
  readonly names: StatementNames;
  readonly maxPreparedPerBackend: number;
  /** How often (ms) a connection re-checks its user or token and tenant before a transaction. */
  readonly revalidateMs: number;
}

/** What a connection reports to its gateway. */
export interface ConnectionHooks {
  /** Admits an authenticated identity (per-tenant and total limits); throws to refuse. */
  admit(connection: ClientConnection): void;
  /** A CancelRequest arrived on this socket. */
  cancel(pid: number, secret: number): void;
  closed(connection: ClientConnection): void;
}

/** SQLSTATE of a failed login: bad credentials 28P01, refused authorization 28000, else the error's own. */
function loginState(error: TenantryError): string {
  if (error.code === 'TENANTRY_ERR_AUTH') return '28P01';
  if (/TENANT_(DISABLED|LOCKED|NOT_FOUND)|TOKEN_|INSECURE/.test(error.code)) return '28000';
  return error.sqlstate;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);
const MAX_STARTUP_PACKET = 10_000;
const LOGIN_TIMEOUT_MS = 15_000;

/**
 * One client of the gateway: startup (SSLRequest, StartupMessage, CancelRequest), then
 * authentication, then the relay of its messages to pooled backends.
 */
export class ClientConnection {
  /** The key this client quotes to cancel its query (BackendKeyData). */
  readonly pid = randomInt(1, 2 ** 31 - 1);
  readonly secret = randomInt(-(2 ** 31), 2 ** 31 - 1);
  readonly connectedAt = Date.now();
  identity: GatewayIdentity | undefined;
  /** Counted against the per-tenant client limit (set by the gateway when it admits it). */
  admitted = false;
  #socket: net.Socket;
  readonly #raw: net.Socket;
  readonly #host: GatewayHost;
  readonly #settings: ConnectionSettings;
  readonly #hooks: ConnectionHooks;
  #phase: 'startup' | 'auth' | 'ready' | 'closed' = 'startup';
  #startup: Buffer = Buffer.alloc(0);
  readonly #framer: Framer;
  #inbox: Buffer[] = [];
  #waiting: ((body: Buffer) => void) | undefined;
  #relay: TransactionRelay | undefined;
  #secure = false;
  readonly #loginTimer: NodeJS.Timeout;

  constructor(socket: net.Socket, host: GatewayHost, settings: ConnectionSettings, hooks: ConnectionHooks) {
    this.#raw = socket;
    this.#socket = socket;
    this.#host = host;
    this.#settings = settings;
    this.#hooks = hooks;
    this.#framer = new Framer(settings.maxMessageBytes);
    socket.setNoDelay(true);
    this.#listen(socket);
    // A client that does not finish logging in is not kept (as PgBouncer's client_login_timeout).
    this.#loginTimer = setTimeout(() => {
      if (this.#phase !== 'ready') this.fatal('08P01', 'TENANTRY_ERR_AUTH: login timed out');
    }, LOGIN_TIMEOUT_MS);
    this.#loginTimer.unref();
  }

  /** The relay once authenticated (for statistics and cancel). */
  get relay(): TransactionRelay | undefined {
    return this.#relay;
  }

  #listen(socket: net.Socket): void {
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', () => this.close());
    socket.on('close', () => this.close());
  }

  #onData(chunk: Buffer): void {
    try {
      if (this.#phase === 'startup') this.#onStartupData(chunk);
      else if (this.#phase === 'auth') this.#onAuthData(chunk);
      else if (this.#phase === 'ready') this.#relay?.onClientData(chunk);
    } catch (error) {
      if (error instanceof ProtocolViolation) this.fatal('08P01', `protocol violation: ${error.message}`);
      else this.fatal('XX000', error instanceof Error ? error.message : String(error));
    }
  }

  #onStartupData(chunk: Buffer): void {
    this.#startup = this.#startup.length === 0 ? chunk : Buffer.concat([this.#startup, chunk]);
    if (this.#startup.length < 8) return;
    const length = this.#startup.readInt32BE(0);
    if (length < 8 || length > MAX_STARTUP_PACKET)
      throw new ProtocolViolation(`invalid startup packet length ${length}`);
    if (this.#startup.length < length) return;
    const packet = this.#startup.subarray(0, length);
    const rest = this.#startup.subarray(length);
    this.#startup = Buffer.alloc(0);
    const code = packet.readInt32BE(4);
    if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
      // Bytes sent before our answer could be injected in clear text (CVE-2021-23214): refuse.
      if (rest.length > 0) throw new ProtocolViolation('data received before the SSL answer');
      if (code === SSL_REQUEST && this.#settings.secureContext && !this.#secure) this.#startTls();
      else this.#socket.write(Buffer.from('N'));
      return;
    }
    if (code === CANCEL_REQUEST && length === 16) {
      this.#hooks.cancel(packet.readInt32BE(8), packet.readInt32BE(12));
      this.#socket.destroy();
      return;
    }
    if (code !== PROTOCOL_V3)
      throw new ProtocolViolation(`unsupported protocol ${code >> 16}.${code & 0xffff}`);
    this.#phase = 'auth';
    if (rest.length > 0) this.#onAuthData(rest);
    void this.#login(readStartupParams(packet.subarray(8)));
  }

  #startTls(): void {
    this.#raw.removeAllListeners('data');
    this.#raw.removeAllListeners('close');
    this.#raw.removeAllListeners('error');
    this.#raw.write(Buffer.from('S'));
    const secure = new tls.TLSSocket(this.#raw, {
      isServer: true,
      secureContext: this.#settings.secureContext,
    });
    this.#secure = true;
    this.#socket = secure;
    this.#listen(secure);
  }

  #onAuthData(chunk: Buffer): void {
    this.#framer.push(chunk);
    for (let frame = this.#framer.next(); frame; frame = this.#framer.next()) {
      if (frame[0] !== 0x70 /* p */) throw new ProtocolViolation('expected a password message');
      const body = frame.subarray(5);
      if (this.#waiting) {
        const waiting = this.#waiting;
        this.#waiting = undefined;
        waiting(body);
      } else this.#inbox.push(body);
    }
  }

  #receive(): Promise<Buffer> {
    const next = this.#inbox.shift();
    if (next) return Promise.resolve(next);
    return new Promise((resolve) => (this.#waiting = resolve));
  }

  async #login(params: Map<string, string>): Promise<void> {
    try {
      const request = checkStartup(params, this.#settings.database);
      const address = this.#raw.remoteAddress;
      const identity = await authenticate(
        {
          send: (bytes) => this.#socket.write(bytes),
          receive: () => this.#receive(),
          secure: this.#secure,
          loopback: address === undefined || LOOPBACK.has(address),
        },
        request,
        this.#host,
      );
      if (this.#isClosed()) return;
      this.identity = identity;
      this.#hooks.admit(this);
      const acting = identity.effective ?? identity.tenant;
      const route: TenantRoute = await this.#host.route(identity.tenant, identity.permission);
      const wanted = new Map(request.settings);
      if (identity.effective) wanted.set('tenantry.effective', String(identity.effective.id));
      const [server, settings] = await Promise.all([
        this.#host.serverParameters(),
        this.#host.checkSettings(request.settings),
      ]);
      if (this.#isClosed()) return;
      const out = [authentication(AUTH_OK)];
      const reported = new Map(server);
      for (const [name, value] of settings) reported.set(name, value);
      reported.set('session_authorization', identity.user);
      reported.set('is_superuser', 'off');
      reported.set('client_encoding', 'UTF8');
      for (const [name, value] of reported) out.push(parameterStatus(name, value));
      out.push(backendKeyData(this.pid, this.secret), readyForQuery('I'));
      this.#relay = new TransactionRelay({
        client: this.#socket,
        host: this.#host,
        settings: this.#settings,
        route,
        wanted,
        identity,
        fatal: (code, message) => this.fatal(code, message),
        terminate: () => this.close(),
      });
      this.#phase = 'ready';
      clearTimeout(this.#loginTimer);
      this.#socket.write(Buffer.concat(out));
      this.#host.logger.debug({ user: identity.user, tenant: acting.name }, 'gateway client authenticated');
      // Bytes that arrived with the last auth message belong to the relay.
      const pending = this.#framer.pending;
      if (pending > 0) this.#relay.adoptFramer(this.#framer);
    } catch (error) {
      if (this.#isClosed()) return;
      const failure = error instanceof TenantryError ? error : undefined;
      this.#host.logger.info({ err: error, user: params.get('user') }, 'gateway login refused');
      if (failure) this.fatal(loginState(failure), `${failure.code}: ${failure.message}`);
      else if (isConnectionError(error)) {
        // PostgreSQL (or the path to it) failed while checking the login: say so, retryably.
        const lost = connectionLost(error);
        this.fatal(lost.sqlstate, `${lost.code}: ${lost.message}`);
      } else this.fatal('XX000', error instanceof Error ? error.message : String(error));
    }
  }

  #isClosed(): boolean {
    return this.#phase === 'closed';
  }

  /** Sends a FATAL error and closes the connection. */
  fatal(code: string, message: string): void {
    if (this.#phase === 'closed') return;
    if (!this.#socket.destroyed) this.#socket.end(errorResponse({ severity: 'FATAL', code, message }));
    this.close();
  }

  /** Asks the backend serving this client to cancel its statement (if one is serving it). */
  cancelBackend(): void {
    this.#relay?.cancel();
  }

  /**
   * Graceful shutdown: close at once when idle, else after the current transaction ends.
   * Answers true when the connection closed now.
   */
  shutdown(): boolean {
    if (this.#phase !== 'ready' || !this.#relay || this.#relay.idle) {
      this.fatal('57P01', 'TENANTRY_ERR_CLOSED: the gateway is shutting down');
      return true;
    }
    this.#relay.closeWhenIdle(() => this.fatal('57P01', 'TENANTRY_ERR_CLOSED: the gateway is shutting down'));
    return false;
  }

  /** Closes the socket and gives any backend back. */
  close(): void {
    if (this.#phase === 'closed') return;
    this.#phase = 'closed';
    clearTimeout(this.#loginTimer);
    this.#relay?.clientGone();
    if (this.#waiting) this.#waiting(Buffer.alloc(0));
    if (!this.#socket.writableEnded) this.#socket.end();
    setTimeout(() => this.#socket.destroy(), 1000).unref();
    this.#hooks.closed(this);
  }
}
