import { chmodSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** What a running `tenantry serve` records in its data dir so other CLI commands find it. */
export interface RuntimeInfo {
  readonly url: string;
  readonly pid: number;
  readonly embedded: boolean;
}

function pathOf(dataDir: string): string {
  return join(resolve(dataDir), 'server.json');
}

/** Records the running server (mode 0600: the URL carries the operator's password). */
export function writeRuntimeInfo(dataDir: string, info: RuntimeInfo): void {
  const file = pathOf(dataDir);
  writeFileSync(file, JSON.stringify(info), { mode: 0o600 });
  chmodSync(file, 0o600);
}

/** Removes the record, if it is ours. */
export function removeRuntimeInfo(dataDir: string, pid: number): void {
  const info = readRuntimeInfo(dataDir);
  if (info?.pid === pid) rmSync(pathOf(dataDir), { force: true });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The running server of `dataDir`, or undefined when none runs (a stale record is ignored). */
export function readRuntimeInfo(dataDir: string): RuntimeInfo | undefined {
  const file = pathOf(dataDir);
  if (!existsSync(file)) return undefined;
  try {
    const info = JSON.parse(readFileSync(file, 'utf8')) as RuntimeInfo;
    return typeof info.url === 'string' && typeof info.pid === 'number' && alive(info.pid) ? info : undefined;
  } catch {
    return undefined;
  }
}
