import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';

/**
 * Another process using tenantry: a child Node process that runs `script` (an ES module body)
 * with the built library (`npm run build` first, as for cli.test.ts) imported as `tenantry`'s
 * module namespace `lib`, and `URL` / `KEY` in its environment. Lines it prints as JSON come
 * back through {@link ChildProcess.next}.
 */
export class ChildProcess {
  readonly process: ChildProcessWithoutNullStreams;
  readonly #lines: unknown[] = [];
  readonly #waiters: ((line: unknown) => void)[] = [];
  stderr = '';
  readonly exited: Promise<number | null>;

  constructor(script: string, env: Record<string, string>) {
    const library = pathToFileURL(join(import.meta.dirname, '..', '..', 'dist', 'src', 'index.js')).href;
    const source = `const lib = await import(${JSON.stringify(library)});\nconst say = (o) => process.stdout.write(JSON.stringify(o) + '\\n');\n${script}`;
    this.process = spawn(process.execPath, ['--input-type=module', '-e', source], {
      env: { ...process.env, ...env },
    });
    this.process.stderr.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
    createInterface({ input: this.process.stdout }).on('line', (line) => {
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        return;
      }
      const waiter = this.#waiters.shift();
      if (waiter) waiter(value);
      else this.#lines.push(value);
    });
    this.exited = new Promise((resolve) => this.process.on('exit', (code) => resolve(code)));
  }

  /** The next JSON line the child prints; fails after `ms` or when the child exits first. */
  next<T>(ms = 30_000): Promise<T> {
    const queued = this.#lines.shift();
    if (queued !== undefined) return Promise.resolve(queued as T);
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`child printed nothing in ${ms} ms: ${this.stderr}`)),
        ms,
      );
      void this.exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`child exited with ${code}: ${this.stderr}`));
      });
      this.#waiters.push((line) => {
        clearTimeout(timer);
        resolve(line as T);
      });
    });
  }

  /** Kills the child (SIGKILL by default: no cleanup of any kind) and waits for it to exit. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.process.exitCode === null && this.process.signalCode === null) this.process.kill(signal);
    await this.exited;
  }
}
