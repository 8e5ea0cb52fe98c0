import type pg from 'pg';
import { SESSION_STATE } from '../pool/index.js';

/**
 * Prepared statements in transaction pooling (as PgBouncer 1.21+ does): a client's named
 * statement is prepared on a backend under a gateway-wide name derived from its text and
 * parameter types, so clients that prepare the same statement share one per backend, and a
 * backend that lacks it gets it (re)prepared just before the client's Bind or Describe.
 */

/** A statement a client prepared, as the gateway knows it. */
export interface ClientStatement {
  /** Name of the statement on backends. */
  readonly serverName: string;
  readonly text: string;
  /** Raw parameter-type section of the Parse message (int16 count, then oids). */
  readonly types: Buffer;
  /** Whether running it may leave session state (mayLeaveState): each Bind marks the backend. */
  readonly stateful: boolean;
}

/** Gateway-wide names: one per distinct (text, parameter types). */
export class StatementNames {
  readonly #names = new Map<string, string>();
  #next = 0;
  readonly #max: number;

  constructor(max = 100_000) {
    this.#max = max;
  }

  /** The backend name of a statement. */
  nameFor(text: string, types: Buffer): string {
    const key = `${types.toString('latin1')}\0${text}`;
    let name = this.#names.get(key);
    if (name === undefined) {
      // Forgetting old names is safe: a statement then simply gets a new one.
      if (this.#names.size >= this.#max) this.#names.clear();
      name = `tenantry_s${(this.#next++).toString(36)}`;
      this.#names.set(key, name);
    }
    return name;
  }
}

/** What the gateway knows about one backend connection's session. */
export interface BackendSession {
  /** Statements prepared on it, least recently used first. */
  readonly prepared: Map<string, true>;
  /** Tracked parameters the gateway has SET on it (absent: the backend's default). */
  readonly applied: Map<string, string>;
  /** {@link settingsKey} of `applied`, so a client whose settings are already there skips the diff. */
  appliedKey: string;
}

/** A canonical key of a set of tracked parameters ('' when none). */
export function settingsKey(settings: ReadonlyMap<string, string>): string {
  let key = '';
  for (const [name, value] of settings) key += `${name}\0${value}\0`;
  return key;
}

type WithSession = pg.Client & { [SESSION_STATE]?: BackendSession };

/** The session state of a pooled backend (created empty on first use; the pool's reset clears it). */
export function backendSession(client: pg.Client): BackendSession {
  const holder = client as WithSession;
  let session = holder[SESSION_STATE];
  if (!session) {
    session = { prepared: new Map(), applied: new Map(), appliedKey: '' };
    holder[SESSION_STATE] = session;
  }
  return session;
}

/** Forgets a backend's session state (it is being reset with DISCARD ALL, or closed). */
export function forgetBackendSession(client: pg.Client): void {
  delete (client as WithSession)[SESSION_STATE];
}

/** Reads a Parse message: statement name, query text and the raw parameter-type section. */
export function readParse(frame: Buffer): { name: string; text: string; types: Buffer } {
  const nameEnd = frame.indexOf(0, 5);
  const textEnd = nameEnd < 0 ? -1 : frame.indexOf(0, nameEnd + 1);
  if (textEnd < 0) throw new RangeError('malformed Parse');
  return {
    name: frame.toString('utf8', 5, nameEnd),
    text: frame.toString('utf8', nameEnd + 1, textEnd),
    types: frame.subarray(textEnd + 1),
  };
}

/** Rewrites the statement name of a Bind (`B`) message. */
export function renameBind(frame: Buffer, serverName: string): Buffer {
  const portalEnd = frame.indexOf(0, 5);
  const nameEnd = portalEnd < 0 ? -1 : frame.indexOf(0, portalEnd + 1);
  if (nameEnd < 0) throw new RangeError('malformed Bind');
  return withBody('B', [
    frame.subarray(5, portalEnd + 1),
    Buffer.from(`${serverName}\0`),
    frame.subarray(nameEnd + 1),
  ]);
}

/** Rewrites a Describe or Close of a statement (`D`/`C` with `S`) to the backend name. */
export function renameTarget(type: 'D' | 'C', serverName: string): Buffer {
  return withBody(type, [Buffer.from(`S${serverName}\0`)]);
}

function withBody(type: string, parts: Buffer[]): Buffer {
  const length = parts.reduce((n, p) => n + p.length, 4);
  const head = Buffer.allocUnsafe(5);
  head[0] = type.charCodeAt(0);
  head.writeInt32BE(length, 1);
  return Buffer.concat([head, ...parts], length + 1);
}

/** The statement name a Bind refers to. */
export function bindStatement(frame: Buffer): string {
  const portalEnd = frame.indexOf(0, 5);
  const nameEnd = portalEnd < 0 ? -1 : frame.indexOf(0, portalEnd + 1);
  if (nameEnd < 0) throw new RangeError('malformed Bind');
  return frame.toString('utf8', portalEnd + 1, nameEnd);
}

/** The kind (`S` statement, `P` portal) and name a Describe or Close refers to. */
export function describeTarget(frame: Buffer): { kind: string; name: string } {
  const end = frame.indexOf(0, 6);
  if (end < 0 || frame.length < 7) throw new RangeError('malformed Describe/Close');
  return { kind: String.fromCharCode(frame[5] ?? 0), name: frame.toString('utf8', 6, end) };
}
