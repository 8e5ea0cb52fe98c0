import { resolveCliSettings } from '../config.js';
import { TenantryError } from '../errors.js';
import { createLogger } from '../logger.js';
import { createTenantry, type Tenantry } from '../tenantry.js';
import { resolveMasterKey } from './master-key.js';
import { readRuntimeInfo } from './runtime-file.js';

/** Global flags every command accepts. */
export interface GlobalFlags {
  dataDir?: string;
  databaseUrl?: string;
}

/**
 * Finds the database a CLI command talks to: `--database-url`, then `TENANTRY_DATABASE_URL`,
 * then the running `tenantry serve` of the same `--data-dir`. Throws `TENANTRY_ERR_NO_SERVER`.
 */
export function findDatabaseUrl(flags: GlobalFlags): string {
  const settings = resolveCliSettings(flags);
  if (settings.databaseUrl) return settings.databaseUrl;
  const running = readRuntimeInfo(settings.dataDir);
  if (running) return running.url;
  throw new TenantryError('NO_SERVER', { dataDir: settings.dataDir });
}

/** Opens tenantry for one CLI command, runs `fn`, and closes it. */
export async function withTenantry<T>(
  flags: GlobalFlags,
  fn: (tenantry: Tenantry) => Promise<T>,
): Promise<T> {
  const settings = resolveCliSettings(flags);
  const masterKey = resolveMasterKey(settings, false);
  const tenantry = await createTenantry({
    databaseUrl: findDatabaseUrl(flags),
    ...(masterKey === undefined ? {} : { masterKey }),
    pool: { budget: 2 },
    logger: createLogger(settings.logLevel ?? 'warn'),
  });
  try {
    return await fn(tenantry);
  } finally {
    await tenantry.close();
  }
}
