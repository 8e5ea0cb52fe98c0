import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it, vi } from 'vitest';
import { createTestDatabase } from './helpers/db.js';

const root = join(import.meta.dirname, '..');

describe('the README', () => {
  it('its library quickstart runs as written and prints what it promises', async () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const block = /<!-- quickstart -->\s*```ts\n([\s\S]*?)```\s*<!-- \/quickstart -->/.exec(readme)?.[1];
    expect(block).toBeDefined();
    const dir = join(root, 'test-output');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `readme-quickstart-${process.pid}.ts`);
    writeFileSync(
      file,
      block!.replace("from 'tenantry'", `from '${pathToFileURL(join(root, 'src', 'index.ts')).href}'`),
    );
    const logs: unknown[][] = [];
    const spy = vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => void logs.push(args));
    const previous = process.env.TENANTRY_DATABASE_URL;
    process.env.TENANTRY_DATABASE_URL = await createTestDatabase('readme');
    try {
      await import(pathToFileURL(file).href);
    } finally {
      rmSync(file, { force: true });
      spy.mockRestore();
      if (previous === undefined) delete process.env.TENANTRY_DATABASE_URL;
      else process.env.TENANTRY_DATABASE_URL = previous;
    }
    expect(logs).toEqual([['Globex', [{ id: 1, amount: '100.5' }]], ['0']]);
  });

  it('shows exactly the two set-up commands CI relies on', () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    expect(readme).toContain('npm ci && npm start');
    expect(readme).toContain('npm ci && npm test');
    expect(readFileSync(join(root, '.ci', 'run'), 'utf8')).toMatch(/^npm ci && npm test$/m);
  });
});
