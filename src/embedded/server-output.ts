/**
 * What initdb and postgres write: every line goes to the logger at debug level (never to the
 * console), the last lines are kept for error messages, and listeners can watch for a line
 * (such as "ready to accept connections"). Streams are drained for the server's whole life so
 * a full pipe never blocks PostgreSQL.
 */
import type { Readable } from 'node:stream';
import type { Logger } from '../logger.js';

/** How many recent lines an error message quotes. */
const keptLines = 20;

/** Collects a child process's output: logs it, keeps its tail, tells listeners about each line. */
export class ServerOutput {
  readonly #lines: string[] = [];
  readonly #listeners = new Set<(line: string) => void>();
  readonly #logger: Logger | undefined;

  /** `logger` receives every line at debug level, tagged with the program that wrote it. */
  constructor(logger?: Logger) {
    this.#logger = logger;
  }

  /** Reads `stream` line by line until it ends; `program` tags the log entries. */
  follow(stream: Readable | null, program: string): void {
    if (!stream) return;
    stream.setEncoding('utf8');
    let partial = '';
    stream.on('data', (chunk: string) => {
      const parts = (partial + chunk).split(/\r?\n/);
      partial = parts.pop() ?? '';
      for (const line of parts) this.#add(program, line);
    });
    stream.on('end', () => {
      if (partial) this.#add(program, partial);
      partial = '';
    });
    stream.on('error', () => {
      // The pipe broke because the process died; its exit is reported elsewhere.
    });
  }

  /** Calls `listener` for every later line; returns a function that stops that. */
  onLine(listener: (line: string) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** The last lines written, for an error message; a placeholder when there were none. */
  tail(): string {
    return this.#lines.length > 0 ? this.#lines.join('\n') : '(no output)';
  }

  #add(program: string, line: string): void {
    if (line.trim() === '') return;
    this.#lines.push(line);
    if (this.#lines.length > keptLines) this.#lines.shift();
    this.#logger?.debug({ component: 'embedded-postgres', program }, line);
    for (const listener of this.#listeners) listener(line);
  }
}
