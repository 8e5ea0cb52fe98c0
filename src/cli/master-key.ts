import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { CliSettings } from '../config.js';
import { loadOrCreateKeyFile } from '../crypto/index.js';
import { err } from './output.js';

/** Where `tenantry serve` keeps a generated master key when none is passed. */
export function keyFilePath(dataDir: string): string {
  return join(resolve(dataDir), 'master.key');
}

/**
 * The master key a CLI command uses: `TENANTRY_MASTER_KEY`, else the data dir's key file.
 * With `create` (only `serve`), a missing key file is generated, with a warning that production
 * should pass the key from a secret store.
 */
export function resolveMasterKey(settings: CliSettings, create: boolean): string | undefined {
  if (settings.masterKey) return settings.masterKey;
  const path = keyFilePath(settings.dataDir);
  if (!create && !existsSync(path)) return undefined;
  const { created } = loadOrCreateKeyFile(path);
  if (created) {
    err(
      `warning: generated a master key in ${path} (mode 0600). In production pass TENANTRY_MASTER_KEY from a secret store instead.`,
    );
  }
  return readFileSync(path, 'utf8').trim();
}
