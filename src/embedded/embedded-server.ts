/**
 * A running embedded PostgreSQL: its connection URL and a `stop()` that does a fast shutdown
 * (SIGINT to the postmaster: sessions are ended, a checkpoint is written) and waits for it.
 */
import type { ChildProcess } from 'node:child_process';
import type { Logger } from '../logger.js';
import { exitOf } from './child-process.js';

/** A running embedded PostgreSQL server, owned by whoever started it. */
export interface EmbeddedServer {
  /** Superuser connection URL: `postgresql://postgres:<password>@127.0.0.1:<port>/postgres`. */
  readonly url: string;
  /** The TCP port on 127.0.0.1 the server listens on. */
  readonly port: number;
  /** tenantry's data directory (absolute); the cluster lives in `${dataDir}/pg`. */
  readonly dataDir: string;
  /**
   * Fast shutdown: ends every session, writes a checkpoint, and resolves once the server has
   * exited. Calling it again returns the same promise. Never rejects.
   */
  stop(): Promise<void>;
}

/** How long (ms) a fast shutdown may take before an immediate shutdown (SIGQUIT), then SIGKILL. */
const fastShutdownMs = 30_000;
const immediateShutdownMs = 10_000;

/**
 * Stops the postmaster `child` (fast shutdown, escalating when it hangs) and resolves once it
 * has exited; resolves at once when it already has.
 */
export async function shutDown(child: ChildProcess): Promise<void> {
  if (hasExited(child)) return;
  const exited = exitOf(child);
  child.kill('SIGINT');
  const immediate = setTimeout(() => child.kill('SIGQUIT'), fastShutdownMs);
  const kill = setTimeout(() => child.kill('SIGKILL'), fastShutdownMs + immediateShutdownMs);
  try {
    await exited;
  } finally {
    clearTimeout(immediate);
    clearTimeout(kill);
  }
}

function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** The {@link EmbeddedServer} over a postmaster child process. */
export class PostgresServer implements EmbeddedServer {
  readonly url: string;
  readonly port: number;
  readonly dataDir: string;
  readonly #child: ChildProcess;
  readonly #logger: Logger | undefined;
  #stopping: Promise<void> | undefined;

  /**
   * When Node exits without `stop()` having been called, the postmaster still gets a fast
   * shutdown request instead of living on unowned. No signal handlers are installed here.
   */
  readonly #onNodeExit = (): void => {
    if (!hasExited(this.#child)) this.#child.kill('SIGINT');
  };

  /** Wraps a postmaster that already accepts connections as `superuser` with `password`. */
  constructor(init: {
    child: ChildProcess;
    port: number;
    dataDir: string;
    superuser: string;
    password: string;
    logger: Logger | undefined;
  }) {
    this.#child = init.child;
    this.#logger = init.logger;
    this.port = init.port;
    this.dataDir = init.dataDir;
    const credentials = `${encodeURIComponent(init.superuser)}:${encodeURIComponent(init.password)}`;
    this.url = `postgresql://${credentials}@127.0.0.1:${init.port}/postgres`;
    process.on('exit', this.#onNodeExit);
    this.#child.once('exit', (code, signal) => {
      process.off('exit', this.#onNodeExit);
      if (this.#stopping === undefined) {
        this.#logger?.warn({ code, signal, port: this.port }, 'embedded PostgreSQL exited unexpectedly');
      }
    });
  }

  /** See {@link EmbeddedServer.stop}. */
  stop(): Promise<void> {
    this.#stopping ??= shutDown(this.#child).then(() => {
      this.#logger?.info({ port: this.port, dataDir: this.dataDir }, 'embedded PostgreSQL stopped');
    });
    return this.#stopping;
  }
}
