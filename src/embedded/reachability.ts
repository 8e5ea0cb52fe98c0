/**
 * Whether another OS user can reach a path: every directory from `/` down to it must be
 * searchable (`x`) by that user, judged from the mode bits the way the kernel does (owner
 * class, then group class, then others). The child runs with only its primary group — libuv
 * drops supplementary groups when it switches uid — so only the primary gid counts.
 */
import type { Stats } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import type { ServerUser } from './os-user.js';

/** A directory on the way to a path that the server user cannot pass, and why. */
export interface Obstacle {
  /** The directory (or file) the user cannot pass. */
  readonly path: string;
  /** A sentence saying why, e.g. `/tmp/tmp.abc is mode 0700 owned by root; …`. */
  readonly reason: string;
  /** What would fix it, e.g. `chmod o+x /tmp/tmp.abc`. */
  readonly fix: string;
}

type Access = 'search' | 'read-execute';

const bits: Record<Access, number> = { search: 0o1, 'read-execute': 0o5 };
const words: Record<Access, string> = { search: 'traverse', 'read-execute': 'read and execute' };
const letters: Record<Access, string> = { search: 'x', 'read-execute': 'rx' };

/**
 * The first directory on the way to `target` (inclusive) that `user` cannot traverse, or
 * `undefined` when it can reach `target`. Components that do not exist yet are skipped (they
 * will be created by this process). Both the path as written and its real path are checked.
 */
export async function findTraversalObstacle(target: string, user: ServerUser): Promise<Obstacle | undefined> {
  for (const dir of await ancestry(target)) {
    const obstacle = await obstacleAt(dir, user, 'search');
    if (obstacle) return obstacle;
  }
  return undefined;
}

/**
 * Like {@link findTraversalObstacle}, then checks that each of `files` (inside `target`) can be
 * read and, for `executables`, run by `user`.
 */
export async function findAccessObstacle(
  target: string,
  user: ServerUser,
  files: { readonly executables: readonly string[]; readonly directories: readonly string[] },
): Promise<Obstacle | undefined> {
  const onTheWay = await findTraversalObstacle(target, user);
  if (onTheWay) return onTheWay;
  for (const dir of files.directories) {
    const obstacle = await obstacleAt(dir, user, 'read-execute');
    if (obstacle) return obstacle;
  }
  for (const file of files.executables) {
    const obstacle = await obstacleAt(file, user, 'read-execute');
    if (obstacle) return obstacle;
  }
  return undefined;
}

/** Every directory from `/` down to `target`, for the path as written and for its real path. */
async function ancestry(target: string): Promise<string[]> {
  const written = path.resolve(target);
  const real = await realpath(written).catch(() => written);
  const all = new Set<string>([...prefixes(written), ...prefixes(real)]);
  return [...all];
}

function prefixes(absolute: string): string[] {
  const result: string[] = [];
  let current = absolute;
  for (;;) {
    result.unshift(current);
    const parent = path.dirname(current);
    if (parent === current) return result;
    current = parent;
  }
}

async function obstacleAt(file: string, user: ServerUser, access: Access): Promise<Obstacle | undefined> {
  let info: Stats;
  try {
    info = await stat(file);
  } catch {
    return undefined; // not there yet: this process creates it
  }
  const granted = classBits(info, user);
  if ((granted.bits & bits[access]) === bits[access]) return undefined;
  const mode = (info.mode & 0o7777).toString(8).padStart(4, '0');
  const owner = info.uid === 0 ? 'root' : info.uid === user.uid ? user.name : `uid ${info.uid}`;
  return {
    path: file,
    reason: `${file} is mode ${mode} owned by ${owner}; the ${user.name} user cannot ${words[access]} it`,
    fix: `chmod ${granted.who}+${letters[access]} ${file}`,
  };
}

/** The permission bits (shifted to the low three) that apply to `user`, and their class letter. */
function classBits(info: Stats, user: ServerUser): { bits: number; who: 'u' | 'g' | 'o' } {
  if (user.uid === 0) return { bits: 0o7, who: 'u' };
  if (info.uid === user.uid) return { bits: (info.mode >> 6) & 0o7, who: 'u' };
  if (info.gid === user.gid) return { bits: (info.mode >> 3) & 0o7, who: 'g' };
  return { bits: info.mode & 0o7, who: 'o' };
}
