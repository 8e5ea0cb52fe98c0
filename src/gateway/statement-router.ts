import { mayLeaveState } from '../pool/index.js';
import type { BackendLink } from './backend-link.js';
import type { ConnectionSettings } from './client-connection.js';
import { CLOSE_COMPLETE, PARSE_COMPLETE, closeStatement, parse } from './protocol.js';
import type { Entry, ResponseQueue } from './response-queue.js';
import { refusedStatement } from '../session/sql-guard.js';
import {
  bindStatement,
  describeTarget,
  readParse,
  renameBind,
  renameTarget,
  type BackendSession,
  type ClientStatement,
} from './statements.js';

/** What the router does besides queueing: inject frames, mark the backend dirty, refuse SQL. */
export interface RouterActions {
  /** Adds a frame to what goes to the backend (in order with the forwarded ones). */
  inject(bytes: Buffer): void;
  markDirty(): void;
  refuse(message: string, simple: boolean): void;
}

/**
 * Routes the statement-bearing messages of one client (Query, Parse, Bind, Describe, Close):
 * checks SQL against the gateway's guard, notes session state, and maps the client's named
 * statements onto backend statements, preparing them where a backend lacks them.
 */
export class StatementRouter {
  readonly #settings: ConnectionSettings;
  readonly #queue: ResponseQueue;
  readonly #actions: RouterActions;
  readonly #statements = new Map<string, ClientStatement>();

  constructor(settings: ConnectionSettings, queue: ResponseQueue, actions: RouterActions) {
    this.#settings = settings;
    this.#queue = queue;
    this.#actions = actions;
  }

  /** Handles one message for a backend whose session is `session`; `send` forwards a frame. */
  route(
    type: 'Q' | 'P' | 'B' | 'D' | 'C',
    frame: Buffer,
    session: BackendSession,
    send: (bytes: Buffer) => void,
  ): void {
    switch (type) {
      case 'Q': {
        const sql = frame.toString('utf8', 5, frame.length - 1);
        if (this.#checked(sql, true)) {
          this.#queue.push({ kind: 'Q', swallow: false });
          send(frame);
        }
        return;
      }
      case 'P':
        return this.#parse(frame, session, send);
      case 'B': {
        const statement = this.#statements.get(bindStatement(frame));
        this.#queue.push({ kind: 'B', swallow: false });
        if (!statement) return send(frame);
        // Run again in a later transaction, perhaps on another backend: that one needs a reset too.
        if (statement.stateful) this.#actions.markDirty();
        this.#ensure(statement, session);
        return send(renameBind(frame, statement.serverName));
      }
      case 'D':
      case 'C': {
        const target = describeTarget(frame);
        const statement = target.kind === 'S' ? this.#statements.get(target.name) : undefined;
        if (type === 'C' && target.kind === 'S' && target.name !== '') {
          // Statements stay prepared on backends (shared, evicted by LRU); the client's name goes.
          this.#statements.delete(target.name);
          this.#queue.push({ kind: 'C', swallow: false, synthetic: CLOSE_COMPLETE });
          return;
        }
        this.#queue.push({ kind: type, swallow: false });
        if (!statement) return send(frame);
        this.#ensure(statement, session);
        return send(renameTarget(type, statement.serverName));
      }
    }
  }

  /** Closes a client statement without a backend (no transaction in progress); false if not one. */
  closeLocally(frame: Buffer, reply: (bytes: Buffer) => void): boolean {
    const target = describeTarget(frame);
    if (target.kind !== 'S' || target.name === '') return false;
    this.#statements.delete(target.name);
    reply(CLOSE_COMPLETE);
    return true;
  }

  /** An owed Parse that the backend skipped or refused: the statement is not prepared there. */
  forget(entry: Entry, backend: BackendLink | undefined): void {
    if (entry.prepares !== undefined) backend?.session.prepared.delete(entry.prepares);
    // A Close PostgreSQL skipped (after an error in its batch): the statement is still there, and
    // a later Parse of that name would fail with 42P05 if it were forgotten.
    if (entry.closes !== undefined) backend?.session.prepared.set(entry.closes, true);
  }

  #checked(sql: string, simple: boolean): boolean {
    const refused = refusedStatement(sql);
    if (refused !== undefined) {
      this.#actions.refuse(`${refused} is not allowed through the gateway.`, simple);
      return false;
    }
    if (mayLeaveState(sql)) this.#actions.markDirty();
    return true;
  }

  #parse(frame: Buffer, session: BackendSession, send: (bytes: Buffer) => void): void {
    const { name, text, types } = readParse(frame);
    if (!this.#checked(text, false)) return;
    if (name === '') {
      this.#queue.push({ kind: 'P', swallow: false });
      return send(frame);
    }
    const statement = {
      serverName: this.#settings.names.nameFor(text, types),
      text,
      types,
      stateful: mayLeaveState(text),
    };
    this.#statements.set(name, statement);
    if (session.prepared.has(statement.serverName)) {
      session.prepared.delete(statement.serverName);
      session.prepared.set(statement.serverName, true);
      this.#queue.push({ kind: 'P', swallow: false, synthetic: PARSE_COMPLETE });
      return;
    }
    this.#makeRoom(session);
    this.#queue.push({ kind: 'P', swallow: false, prepares: statement.serverName });
    session.prepared.set(statement.serverName, true);
    send(parse(statement.serverName, text, types));
  }

  /** Prepares `statement` on the backend first when it lacks it (its answer is hidden). */
  #ensure(statement: ClientStatement, session: BackendSession): void {
    if (session.prepared.has(statement.serverName)) {
      session.prepared.delete(statement.serverName);
      session.prepared.set(statement.serverName, true);
      return;
    }
    this.#makeRoom(session);
    this.#queue.push({ kind: 'P', swallow: true, prepares: statement.serverName });
    session.prepared.set(statement.serverName, true);
    this.#actions.inject(parse(statement.serverName, statement.text, statement.types));
  }

  /** Closes the least recently used backend statement when the backend holds too many. */
  #makeRoom(session: BackendSession): void {
    while (session.prepared.size >= this.#settings.maxPreparedPerBackend) {
      const victim = session.prepared.keys().next().value as string;
      session.prepared.delete(victim);
      this.#queue.push({ kind: 'C', swallow: true, closes: victim });
      this.#actions.inject(closeStatement(victim));
    }
  }
}
