/**
 * Process plumbing of the gateway benchmark: finding (and, on Debian as root, installing) the
 * external programs it drives, running them, free ports, waiting for a listener, and reading a
 * process's CPU time from /proc.
 */
import { spawn, type SpawnOptions } from 'node:child_process';
import { accessSync, constants, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { delimiter, join } from 'node:path';

/** Output of a finished program. */
export interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `file` with `args` to completion; rejects when it cannot start or (unless `allowFail`) exits non-zero. */
export function runProgram(
  file: string,
  args: readonly string[],
  options: SpawnOptions & { allowFail?: boolean } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (text: string) => (stdout += text));
    child.stderr?.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    child.once('error', reject);
    child.once('close', (code) => {
      if (code !== 0 && !options.allowFail) {
        const tail = `${stdout}\n${stderr}`.trim().split('\n').slice(-15).join('\n');
        reject(new Error(`${file} ${args.join(' ')} exited with ${String(code)}:\n${tail}`));
      } else resolve({ code, stdout, stderr });
    });
  });
}

/** The path of `name` on PATH (or in /usr/sbin, /usr/bin, where Debian puts it), or undefined. */
export function findBinary(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin', '/usr/bin'];
  for (const dir of dirs) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

let aptUpdated = false;
const CREATECLUSTER_DIR = '/etc/postgresql-common/createcluster.d';

/**
 * Finds `binary`, installing Debian's `debPackage` with apt-get first when it is missing (as
 * root only: the benchmark never asks for a password). Throws with what to install otherwise.
 */
export async function ensureBinary(binary: string, debPackage: string): Promise<string> {
  const found = findBinary(binary);
  if (found) return found;
  const apt = findBinary('apt-get');
  if (process.getuid?.() !== 0 || !apt) {
    throw new Error(
      `${binary} is not installed; install the Debian package ${debPackage} (or put ${binary} on PATH)`,
    );
  }
  console.log(`installing ${debPackage} (apt-get) for ${binary}…`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  if (debPackage.startsWith('postgresql-')) {
    // Debian's server package would create (and start) a cluster on port 5432: not wanted here.
    mkdirSync(CREATECLUSTER_DIR, { recursive: true });
    writeFileSync(join(CREATECLUSTER_DIR, 'tenantry-bench.conf'), 'create_main_cluster = false\n');
  }
  if (!aptUpdated) {
    await runProgram(apt, ['update', '-qq'], { env });
    aptUpdated = true;
  }
  await runProgram(apt, ['install', '-y', '-q', '--no-install-recommends', debPackage], { env });
  const installed = findBinary(binary);
  if (!installed) throw new Error(`apt-get installed ${debPackage} but ${binary} is still not found`);
  return installed;
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once `host:port` accepts a TCP connection; rejects after `timeoutMs`. */
export async function waitForPort(host: string, port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host, port }, () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on ${host}:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** What the scheduler did for a process so far (Linux /proc; NaN where unavailable). */
export interface SchedSample {
  /** User plus system CPU time of all its threads, ms (/proc/PID/stat). */
  readonly cpuMs: number;
  /** Time its main thread was runnable but waiting for a CPU, ms (/proc/PID/schedstat). */
  readonly waitMs: number;
  /** Its main thread's involuntary context switches (preempted while runnable). */
  readonly preempted: number;
}

/** Reads {@link SchedSample} of `pid` (NaN fields where /proc has no answer). */
export function processSched(pid: number | undefined): SchedSample {
  const read = (file: string): string | undefined => {
    try {
      return pid === undefined ? undefined : readFileSync(`/proc/${pid}/${file}`, 'utf8');
    } catch {
      return undefined;
    }
  };
  const stat = read('stat');
  // Fields after the command name (which may contain spaces) start after the last ')'.
  const fields = stat?.slice(stat.lastIndexOf(')') + 2).split(' ') ?? [];
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15)
  const schedstat = read('schedstat')?.split(' ') ?? [];
  const status = read('status') ?? '';
  return {
    cpuMs: (ticks * 1000) / 100, // USER_HZ is 100 on Linux
    waitMs: Number(schedstat[1]) / 1e6,
    preempted: Number(/^nonvoluntary_ctxt_switches:\s*(\d+)/m.exec(status)?.[1] ?? Number.NaN),
  };
}

/** The uid and gid of OS user `name`, from /etc/passwd, or undefined. */
export function osUser(name: string): { uid: number; gid: number } | undefined {
  try {
    const line = readFileSync('/etc/passwd', 'utf8')
      .split('\n')
      .map((l) => l.split(':'))
      .find((f) => f[0] === name);
    return line ? { uid: Number(line[2]), gid: Number(line[3]) } : undefined;
  } catch {
    return undefined;
  }
}
