import { existsSync, readFileSync } from 'node:fs';
import { Command } from 'commander';
import { resolveCliSettings } from '../../config.js';
import { KeyRing, generateMasterKey, loadOrCreateKeyFile, replaceKeyFile } from '../../crypto/index.js';
import { TenantryError } from '../../errors.js';
import { createTenantry } from '../../tenantry.js';
import { findDatabaseUrl, type GlobalFlags } from '../connect.js';
import { keyFilePath } from '../master-key.js';
import { out } from '../output.js';

async function reseal(flags: GlobalFlags, masterKey: string): Promise<number> {
  const tenantry = await createTenantry({
    databaseUrl: findDatabaseUrl(flags),
    masterKey,
    pool: { budget: 1 },
  });
  try {
    return await tenantry.credentials.rotate();
  } finally {
    await tenantry.close();
  }
}

/**
 * `tenantry rotate-key`: re-encrypts every credential under a new master key while the old one
 * still decrypts. With TENANTRY_MASTER_KEY it must list `NEW,OLD`; with the data dir's key file
 * it generates the new key itself. Safe to rerun after an interruption.
 */
export function rotateKeyCommand(globals: () => GlobalFlags): Command {
  return new Command('rotate-key')
    .description('re-encrypt every stored credential under a new master key')
    .action(async () => {
      const settings = resolveCliSettings(globals());
      if (settings.masterKey) {
        const ring = KeyRing.fromEnv(settings.masterKey);
        if (ring.keyIds.length < 2) {
          throw new TenantryError('MASTER_KEY_INVALID', {
            source: 'TENANTRY_MASTER_KEY',
            problem: 'to rotate, pass the new key first and the old one after it (NEW,OLD)',
          });
        }
        const count = await reseal(globals(), settings.masterKey);
        out(
          `resealed ${count} credentials with key ${ring.currentKeyId}; TENANTRY_MASTER_KEY may now hold the new key alone`,
        );
        return;
      }
      const path = keyFilePath(settings.dataDir);
      if (!existsSync(path)) {
        throw new TenantryError('MASTER_KEY_INVALID', {
          source: `key file ${path}`,
          problem: 'there is no key file and TENANTRY_MASTER_KEY is not set, so there is nothing to rotate',
        });
      }
      const current = loadOrCreateKeyFile(path).ring;
      // An interrupted rotation left NEW,OLD in the file: finish it with the same new key.
      const rotating = current.keyIds.length > 1;
      const content = rotating ? undefined : `${generateMasterKey()},${readKeys(path)}`;
      if (content) replaceKeyFile(path, content);
      const ring = loadOrCreateKeyFile(path).ring;
      const count = await reseal(globals(), readKeys(path));
      replaceKeyFile(path, readKeys(path).split(',')[0] ?? '');
      out(`resealed ${count} credentials with key ${ring.currentKeyId} (key file ${path})`);
    });
}

/** The key file's content: `KEY` or, mid-rotation, `NEW,OLD`. */
function readKeys(path: string): string {
  return readFileSync(path, 'utf8').trim();
}
