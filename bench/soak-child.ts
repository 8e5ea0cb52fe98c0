/**
 * The soak benchmark's child processes (the tenantry server, the library worker) and the
 * parent's handle on them: fork with `--expose-gc` (heap figures after a full collection),
 * request/reply over IPC, stop.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

interface Reply {
  readonly id?: number;
  readonly result?: unknown;
  readonly error?: string;
  readonly ready?: boolean;
  readonly info?: Record<string, unknown>;
}

interface Request {
  readonly id: number;
  readonly op: string;
  readonly arg?: unknown;
}

/** A child process of the soak benchmark. */
export class SoakChild {
  readonly pid: number;
  /** What the child said when it was ready (e.g. its ports). */
  readonly info: Record<string, unknown>;
  readonly #child: ChildProcess;
  readonly #pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();
  readonly #exited: Promise<void>;
  readonly #label: string;
  #next = 1;

  private constructor(
    child: ChildProcess,
    label: string,
    info: Record<string, unknown>,
    exited: Promise<void>,
  ) {
    this.#child = child;
    this.#label = label;
    this.pid = child.pid ?? -1;
    this.info = info;
    this.#exited = exited;
    child.on('message', (reply: Reply) => {
      const waiter = reply.id === undefined ? undefined : this.#pending.get(reply.id);
      if (!waiter || reply.id === undefined) return;
      this.#pending.delete(reply.id);
      if (reply.error !== undefined) waiter.reject(new Error(`${label}: ${reply.error}`));
      else waiter.resolve(reply.result);
    });
    void exited.then(() => {
      for (const waiter of this.#pending.values()) waiter.reject(new Error(`${label} exited`));
      this.#pending.clear();
    });
  }

  /** Forks `./<module>.js` with `env` added and waits for its ready message. */
  static async start(module: string, label: string, env: Record<string, string>): Promise<SoakChild> {
    const entry = fileURLToPath(new URL(`./${module}.js`, import.meta.url));
    const child = fork(entry, [], {
      env: { ...process.env, ...env },
      execArgv: ['--expose-gc'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const ready = await new Promise<Reply>((resolve, reject) => {
      child.once('message', (reply: Reply) => resolve(reply));
      child.once('error', reject);
      void exited.then(() => reject(new Error(`${label} exited before it was ready`)));
    });
    if (!ready.ready) {
      child.kill('SIGKILL');
      throw new Error(`${label} failed to start: ${ready.error ?? 'unknown'}`);
    }
    return new SoakChild(child, label, ready.info ?? {}, exited);
  }

  /** Sends `op` (with `arg`) and waits for the child's answer. */
  ask<T>(op: string, arg?: unknown): Promise<T> {
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: (value) => resolve(value as T), reject });
      this.#child.send({ id, op, arg } satisfies Request, (error) => {
        if (error) {
          this.#pending.delete(id);
          reject(new Error(`${this.#label}: ${error.message}`));
        }
      });
    });
  }

  /** Asks the child to stop (op `stop`) and waits for it to exit; kills it after `timeoutMs`. */
  async stop(timeoutMs = 15_000): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), timeoutMs);
    if (this.#child.connected) await Promise.race([this.ask('stop').catch(() => undefined), this.#exited]);
    await this.#exited;
    clearTimeout(timer);
  }
}

/** A child's request handlers, by op; `stop` must close everything (the process exits after it). */
export type Handlers = Record<string, (arg: unknown) => Promise<unknown>>;

/**
 * The child side: runs `init` (which answers the ready info and the handlers), then serves
 * requests until `stop`; exits when the parent goes away.
 */
export function serveChild(init: () => Promise<{ info: Record<string, unknown>; handlers: Handlers }>): void {
  const send = process.send?.bind(process);
  if (!send) throw new Error('a soak child runs under fork() with an IPC channel');
  process.on('disconnect', () => process.exit(0));
  init().then(
    ({ info, handlers }) => {
      process.on('message', (request: Request) => {
        const handler = handlers[request.op];
        const run = handler ? handler(request.arg) : Promise.reject(new Error(`unknown op ${request.op}`));
        run.then(
          (result) => {
            send({ id: request.id, result });
            if (request.op === 'stop') setImmediate(() => process.exit(0));
          },
          (error: unknown) =>
            send({
              id: request.id,
              error: error instanceof Error ? (error.stack ?? error.message) : String(error),
            }),
        );
      });
      send({ ready: true, info });
    },
    (error: unknown) => {
      send({ ready: false, error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
      setImmediate(() => process.exit(1));
    },
  );
}
