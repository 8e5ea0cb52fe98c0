import { EventEmitter } from 'node:events';
import pg from 'pg';
import { forgetStatement, isStalePlan, statementName, useStatement } from './statement-cache.js';

/** The part of pg's wire connection a query writes its messages to. */
interface WireConnection {
  parse(message: { text: string; name: string; types: number[] }): void;
  bind(message: { portal: string; statement: string; values: unknown[] }): void;
  execute(message: { portal: string; rows: number }): void;
  close(message: { type: 'S'; name: string }): void;
  /** node-postgres's record of the named statements prepared on this connection. */
  parsedStatements: Record<string, string>;
}

/**
 * A statement of tenantry's own making that runs before the caller's. `text` is the literal
 * form (simple protocol); with `prepared`, the extended protocol instead prepares the
 * parameterised form once per connection under `prepared.name` and then only binds values.
 */
export interface PreludeStatement {
  readonly text: string;
  readonly prepared?: { readonly name: string; readonly text: string; readonly values: readonly string[] };
}

/**
 * Whether `text` is surely one statement, so it may run as a prepared statement (the extended
 * protocol refuses several): no `;` anywhere — a `;` inside a literal just keeps it unprepared.
 */
function isSingleStatement(text: string): boolean {
  return !text.includes(';');
}

const PLAIN_KEYS = new Set(['text', 'values', 'name']);

/** pg.Query's first two arguments for `config`: its text and values when that is all it has. */
function pgArgs(config: pg.QueryConfig): [string | pg.QueryConfig, unknown[] | undefined] {
  for (const key in config) if (!PLAIN_KEYS.has(key)) return [config, undefined];
  return typeof config.text === 'string' ? [config.text, config.values] : [config, undefined];
}

/** The hooks of `pg.Query` that {@link TenantQuery} extends (pg calls them; they are untyped). */
interface PgQueryInternals extends EventEmitter {
  text: string;
  name: string | undefined;
  values: unknown[] | undefined;
  requiresPreparation(): boolean;
  submit(connection: WireConnection): Error | null;
  prepare(connection: WireConnection): void;
  handleRowDescription(message: unknown): void;
  handleDataRow(message: unknown): void;
  handleCommandComplete(message: unknown, connection: WireConnection): void;
}

type QueryCallback = (error: Error | null, result?: pg.QueryResult | pg.QueryResult[]) => void;

const PgQuery = pg.Query as unknown as new (
  config: string | pg.QueryConfig,
  values: unknown[] | undefined,
  callback: QueryCallback,
) => PgQueryInternals;

/**
 * A node-postgres query that runs tenantry's own prelude statements (BEGIN, the
 * transaction-local tenant setting) and the caller's statement in ONE round trip.
 *
 * Extended protocol: Parse/Bind/Execute of each prelude statement, then the caller's
 * Parse/Bind/Describe/Execute, then a single Sync. Everything before that Sync runs in one
 * implicit transaction, so `set_config(…, true)` holds for the caller's statement and ends
 * with it. Simple protocol: the prelude is prepended to the query string, which PostgreSQL
 * also runs as one implicit transaction. Prelude results are swallowed; the caller sees only
 * its own rows, exactly as from `pg`.
 *
 * With `autoPrepare`, an unnamed single statement (with values, or without values and without
 * `;`) becomes a named prepared statement of the connection (statement-cache.ts): parsed once,
 * then only bound and executed.
 */
export class TenantQuery extends PgQuery {
  readonly #prelude: readonly PreludeStatement[];
  readonly #autoName: string | undefined;
  #skip: number;

  /**
   * @param prelude statements of tenantry's own making; never user input.
   */
  constructor(
    prelude: readonly PreludeStatement[],
    config: pg.QueryConfig,
    callback: QueryCallback,
    autoPrepare = false,
  ) {
    // pg copies a config object property by property; a plain { text, values, name } (the usual
    // case) is passed as its text instead, which pg wraps without copying.
    super(...pgArgs(config), callback);
    if (config.name !== undefined) this.name = config.name;
    this.#prelude = prelude;
    this.#skip = prelude.length;
    if (autoPrepare && !config.name && (config.values?.length || isSingleStatement(config.text))) {
      this.#autoName = statementName(config.text);
      if (this.#autoName !== undefined) {
        this.name = this.#autoName;
        this.values ??= [];
      }
    }
  }

  /** The name this query's statement got from the statement cache, if any. */
  get autoName(): string | undefined {
    return this.#autoName;
  }

  override submit(connection: WireConnection): Error | null {
    if (this.#prelude.length > 0 && !this.requiresPreparation()) {
      this.text = `${this.#prelude.map((p) => p.text).join(';\n')};\n${this.text}`;
    }
    return super.submit(connection);
  }

  override prepare(connection: WireConnection): void {
    if (this.#autoName !== undefined) useStatement(connection, this.#autoName);
    for (const statement of this.#prelude) {
      const prepared = statement.prepared;
      if (!prepared) {
        connection.parse({ text: statement.text, name: '', types: [] });
        connection.bind({ portal: '', statement: '', values: [] });
      } else {
        // Parsed once per connection; a reset (DISCARD ALL) clears parsedStatements again.
        if (connection.parsedStatements[prepared.name] !== prepared.text) {
          connection.parse({ text: prepared.text, name: prepared.name, types: [] });
          connection.parsedStatements[prepared.name] = prepared.text;
        }
        connection.bind({ portal: '', statement: prepared.name, values: [...prepared.values] });
      }
      connection.execute({ portal: '', rows: 0 });
    }
    super.prepare(connection);
  }

  override handleRowDescription(message: unknown): void {
    if (this.#skip === 0) super.handleRowDescription(message);
  }

  override handleDataRow(message: unknown): void {
    if (this.#skip === 0) super.handleDataRow(message);
  }

  override handleCommandComplete(message: unknown, connection: WireConnection): void {
    if (this.#skip > 0) {
      this.#skip--;
      return;
    }
    super.handleCommandComplete(message, connection);
  }
}

/**
 * Runs `config` on `client` after `prelude`, in one round trip; resolves with the result of
 * the caller's statement (the last one, for a multi-statement simple query). With
 * `autoPrepare`, see {@link TenantQuery}; a statement PostgreSQL refuses to reuse after DDL
 * ({@link isStalePlan}) is forgotten, so the next run parses it again.
 */
export function runWithPrelude<R extends pg.QueryResultRow>(
  client: pg.ClientBase,
  prelude: readonly PreludeStatement[],
  config: pg.QueryConfig,
  autoPrepare = false,
): Promise<pg.QueryResult<R>> {
  return new Promise((resolve, reject) => {
    const query = new TenantQuery(
      prelude,
      config,
      (error, result) => {
        if (error) {
          const wire = (client as unknown as { connection?: WireConnection }).connection;
          if (query.autoName !== undefined && wire && isStalePlan(error))
            forgetStatement(wire, query.autoName);
          reject(error);
        } else resolve((Array.isArray(result) ? result[result.length - 1] : result) as pg.QueryResult<R>);
      },
      autoPrepare,
    );
    void client.query(query as unknown as pg.Submittable);
  });
}
