/**
 * The parent's handle on the gateway child process (gateway-server.ts): start it, ask it for
 * statistics and a CPU profile of a window, stop it.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { CONFIG_ENV, type GatewayServerConfig, type Request } from './gateway-server.js';

interface Reply {
  readonly id?: number;
  readonly result?: unknown;
  readonly error?: string;
  readonly ready?: boolean;
  readonly port?: number;
  readonly pid?: number;
}

/** A gateway running in a child process. */
export class GatewayProcess {
  readonly port: number;
  readonly pid: number;
  readonly #child: ChildProcess;
  readonly #pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();
  #next = 1;
  #exited: Promise<void>;

  private constructor(child: ChildProcess, port: number, pid: number, exited: Promise<void>) {
    this.#child = child;
    this.port = port;
    this.pid = pid;
    this.#exited = exited;
    child.on('message', (reply: Reply) => {
      const waiter = reply.id === undefined ? undefined : this.#pending.get(reply.id);
      if (!waiter || reply.id === undefined) return;
      this.#pending.delete(reply.id);
      if (reply.error !== undefined) waiter.reject(new Error(`gateway process: ${reply.error}`));
      else waiter.resolve(reply.result);
    });
  }

  /** Forks gateway-server.js on `config` and waits until its gateway listens. */
  static async start(config: GatewayServerConfig): Promise<GatewayProcess> {
    const entry = fileURLToPath(new URL('./gateway-server.js', import.meta.url));
    const child = fork(entry, [], {
      env: { ...process.env, [CONFIG_ENV]: JSON.stringify(config) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const ready = await new Promise<Reply>((resolve, reject) => {
      child.once('message', (reply: Reply) => resolve(reply));
      child.once('error', reject);
      void exited.then(() => reject(new Error('the gateway process exited before it was ready')));
    });
    if (!ready.ready || ready.port === undefined || ready.pid === undefined) {
      child.kill('SIGKILL');
      throw new Error(`the gateway process failed to start: ${ready.error ?? 'unknown'}`);
    }
    return new GatewayProcess(child, ready.port, ready.pid, exited);
  }

  #ask<T>(op: Request['op'], extra: Partial<Request> = {}): Promise<T> {
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: (value) => resolve(value as T), reject });
      this.#child.send({ id, op, ...extra } satisfies Request);
    });
  }

  /** `gateway.stats()` and `tenantry.poolStats()` of the child. */
  stats(): Promise<{ gateway: { clients: number; active: number }; pools: unknown }> {
    return this.#ask('stats');
  }

  profileStart(): Promise<void> {
    return this.#ask('profile-start');
  }

  /** Stops the profiler and writes the profile (Chrome .cpuprofile JSON) to `file`. */
  profileStop(file: string): Promise<void> {
    return this.#ask('profile-stop', { file });
  }

  /** Closes the gateway and tenantry in the child and waits for it to exit (kills it after 10 s). */
  async stop(): Promise<void> {
    if (this.#child.exitCode === null && this.#child.signalCode === null && this.#child.connected) {
      const timer = setTimeout(() => this.#child.kill('SIGKILL'), 10_000);
      await Promise.race([this.#ask('stop').catch(() => undefined), this.#exited]);
      await this.#exited;
      clearTimeout(timer);
    }
  }
}
