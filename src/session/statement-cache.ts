import { LRUCache } from 'lru-cache';

/**
 * Automatic prepared statements for tenant queries, as postgres.js and PgBouncer 1.21+ do: a
 * single statement gets a name from its text, is parsed once per connection and from then
 * on only bound and executed, so PostgreSQL skips parsing, rewriting (row-level security, views)
 * and, once it settles on a generic plan, planning.
 *
 * Bounded on both sides: at most {@link MAX_NAMES} texts are named per process and at most
 * {@link MAX_PER_CONNECTION} statements stay prepared per connection — the least recently used
 * one is closed (a `Close` message in the next round trip) when another is prepared.
 */

/** Texts named per process (each name is short; a text evicted here gets a new name later). */
const MAX_NAMES = 2_000;
/** Statements kept prepared on one connection. */
export const MAX_PER_CONNECTION = 100;
/** Longer texts are left unnamed: they are rarely repeated and would pin server memory. */
const MAX_TEXT_LENGTH = 8_192;

/** The part of pg's wire connection the cache reads and writes. */
export interface StatementWire {
  close(message: { type: 'S'; name: string }): void;
  /** node-postgres's record of the named statements parsed on this connection (text by name). */
  parsedStatements: Record<string, string>;
}

let counter = 0;
const names = new LRUCache<string, string>({ max: MAX_NAMES });

/**
 * Per connection, keyed by its `parsedStatements` object: a reset (DISCARD ALL) replaces that
 * object, which starts a fresh record here too. Names in insertion order = least recent first.
 */
const prepared = new WeakMap<Record<string, string>, Set<string>>();
/** Statements to close on a connection before its next statement (stale or evicted). */
const toClose = new WeakMap<Record<string, string>, string[]>();

/** The statement name for `text`, or undefined when it should stay unnamed. */
export function statementName(text: string): string | undefined {
  if (text.length > MAX_TEXT_LENGTH) return undefined;
  let name = names.get(text);
  if (name === undefined) {
    name = `tenantry_q${(++counter).toString(36)}`;
    names.set(text, name);
  }
  return name;
}

/**
 * Called while writing a statement named `name` to `wire`: sends the `Close` messages owed on
 * this connection, records the use, and evicts (closes) the least recently used statement once
 * more than {@link MAX_PER_CONNECTION} are prepared.
 */
export function useStatement(wire: StatementWire, name: string): void {
  const parsed = wire.parsedStatements;
  const pending = toClose.get(parsed);
  if (pending) {
    toClose.delete(parsed);
    for (const stale of pending) wire.close({ type: 'S', name: stale });
  }
  let used = prepared.get(parsed);
  if (!used) prepared.set(parsed, (used = new Set()));
  used.delete(name);
  used.add(name);
  if (used.size > MAX_PER_CONNECTION) {
    const oldest = used.values().next().value;
    if (oldest !== undefined && oldest !== name) {
      used.delete(oldest);
      delete parsed[oldest];
      wire.close({ type: 'S', name: oldest });
    }
  }
}

/**
 * Forgets `name` on `wire` after PostgreSQL refused to reuse it (e.g. "cached plan must not
 * change result type" after DDL): it is closed before the connection's next statement, which
 * parses it afresh.
 */
export function forgetStatement(wire: StatementWire, name: string): void {
  const parsed = wire.parsedStatements;
  delete parsed[name];
  prepared.get(parsed)?.delete(name);
  const pending = toClose.get(parsed);
  if (pending) pending.push(name);
  else toClose.set(parsed, [name]);
}

/**
 * Whether `error` says a prepared statement's plan no longer fits the tables it reads (SQLSTATE
 * 0A000 "cached plan must not change result type", raised after DDL). The statement failed
 * before it did anything; outside an explicit transaction it may simply be run again.
 */
export function isStalePlan(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { code, message } = error as { code?: unknown; message?: unknown };
  return code === '0A000' && typeof message === 'string' && message.includes('cached plan');
}
