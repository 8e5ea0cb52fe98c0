import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { vi } from 'vitest';
import { seedDemo } from '../../src/demo/index.js';
import { createTenantry, generateMasterKey, type Tenantry } from '../../src/index.js';
import { createTestDatabase } from '../helpers/db.js';

const root = join(import.meta.dirname, '..', '..');

/** A fresh database with seed 004's demo (HomeDepot, Lowes… and their customers). */
export interface DemoDatabase {
  readonly url: string;
  readonly masterKey: string;
  readonly tenantry: Tenantry;
}

/** Creates a database, installs tenantry and the demo data. */
export async function demoDatabase(label: string): Promise<DemoDatabase> {
  const url = await createTestDatabase(label);
  const masterKey = generateMasterKey();
  const tenantry = await createTenantry({ databaseUrl: url, masterKey });
  await seedDemo(tenantry);
  return { url, masterKey, tenantry };
}

/** The TypeScript of the block `<!-- example: name -->` of docs/integrations.md. */
export function docExample(name: string): string {
  const doc = readFileSync(join(root, 'docs', 'integrations.md'), 'utf8');
  const pattern = new RegExp(
    `<!-- example: ${name} -->\\s*\`\`\`ts\\n([\\s\\S]*?)\`\`\`\\s*<!-- /example -->`,
  );
  const block = pattern.exec(doc)?.[1];
  if (block === undefined) throw new Error(`docs/integrations.md has no example ${name}`);
  return block;
}

/**
 * Runs a doc example as a module (importing `tenantry` from src/) with `env` set, and returns
 * what it printed with console.log.
 */
export async function runDocExample(
  name: string,
  env: Record<string, string>,
  edit: (code: string) => string = (code) => code,
): Promise<unknown[][]> {
  const dir = join(root, 'test-output');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `integrations-${name}-${process.pid}-${Date.now()}.ts`);
  const source = pathToFileURL(join(root, 'src', 'index.ts')).href;
  writeFileSync(file, edit(docExample(name)).replace(/from 'tenantry'/g, `from '${source}'`));
  const logs: unknown[][] = [];
  const spy = vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => void logs.push(args));
  const previous = Object.fromEntries(Object.keys(env).map((key) => [key, process.env[key]]));
  Object.assign(process.env, env);
  try {
    await import(pathToFileURL(file).href);
  } finally {
    rmSync(file, { force: true });
    spy.mockRestore();
    for (const [key, value] of Object.entries(previous)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  }
  return logs;
}
