import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedDemo } from '../../src/demo/index.js';
import {
  createTenantry,
  generateMasterKey,
  startHttp,
  type HttpServer,
  type Tenantry,
} from '../../src/index.js';
import { createTestDatabase } from '../helpers/db.js';
import { ADMIN } from './helpers.js';

/** Debian's chromium package (`.ci/run` installs it); never a downloaded browser. */
const CHROMIUM = '/usr/bin/chromium';
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const OUTPUT = fileURLToPath(new URL('../../test-output/console/', import.meta.url));
const HOME_DEPOT = ['Albert Hall', 'Candace Jones', 'Carrie Abrahm'];
const LOWES = ['Fred Smith', 'Joan Adlon', 'George Holmes'];

let tenantry: Tenantry;
let server: HttpServer;
let browser: Browser | undefined;
let page: Page;
/** Console errors, uncaught exceptions and CSP violations of the page: must stay empty. */
const problems: string[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `The console test needs Debian's Chromium at ${CHROMIUM}: install it with ` +
        '`DEBIAN_FRONTEND=noninteractive apt-get install -y chromium` (.ci/run does this in CI).',
    );
  }
  tenantry = await createTenantry({
    databaseUrl: await createTestDatabase('http_console'),
    masterKey: generateMasterKey(),
  });
  await seedDemo(tenantry);
  server = await startHttp(tenantry, { port: 0, logger: pino({ level: 'silent' }), adminToken: ADMIN });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS, headless: true });
  page = await browser.newPage({ viewport: { width: 1366, height: 768 } });
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(message.text());
  });
  page.on('pageerror', (error) => problems.push(error.message));
});

afterAll(async () => {
  if (page !== undefined) {
    // Also after a failure: the page as it was is the best clue.
    mkdirSync(OUTPUT, { recursive: true });
    const screenshot = `${OUTPUT}console.png`;
    await page.screenshot({ path: screenshot });
    console.log(`console screenshot: ${screenshot}`);
  }
  await browser?.close();
  await server?.close();
  await tenantry?.close();
});

describe('console assets', () => {
  it('serves / and /console/* with content types, a strict CSP and revalidation caching', async () => {
    const index = await fetch(`${server.url}/`);
    expect(index.status).toBe(200);
    expect(index.headers.get('content-type')).toMatch(/^text\/html/);
    expect(index.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect(index.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(index.headers.get('cache-control')).toBe('no-cache');
    expect(index.headers.get('etag')).toBeTruthy();
    expect(await index.text()).toContain('<script type="module" src="/console/app.js">');
    const script = await fetch(`${server.url}/console/app.js`);
    expect(script.headers.get('content-type')).toMatch(/^(text|application)\/javascript/);
    const css = await fetch(`${server.url}/console/console.css`);
    expect(css.headers.get('content-type')).toMatch(/^text\/css/);
    for (const hidden of ['/console/tsconfig.json', '/console/../console.ts', '/console/nope.js']) {
      const response = await fetch(`${server.url}${hidden}`);
      expect(response.status, hidden).toBe(404);
    }
    const unknown = await fetch(`${server.url}/v1/nope`);
    expect(await unknown.json()).toMatchObject({ code: 'TENANTRY_ERR_ROUTE_NOT_FOUND' });
    expect((await fetch(`${server.url}/docs`)).status).toBeLessThan(400);
  });
});

describe('console in headless Chromium', () => {
  it('signs in, creates and disables a tenant, runs SQL as HomeDepot, and shows activity', async () => {
    await page.goto(`${server.url}/`);
    await page.getByLabel('Admin token').fill(ADMIN);
    await page.keyboard.press('Enter');
    const tenants = page.getByRole('region', { name: 'Tenants' });
    await tenants.getByRole('row', { name: /HomeDepot/ }).waitFor();

    // Keyboard only: focus lands on the Tenants heading, Tab reaches the "New tenant" field.
    await page.waitForFunction("document.activeElement?.id === 'tenants-title'");
    await page.keyboard.press('Tab');
    expect(await page.evaluate('document.activeElement?.id')).toBe('new-name');
    await page.keyboard.type('Initech');
    await page.keyboard.press('Enter');
    const initech = tenants.getByRole('row', { name: /Initech/ });
    await initech.waitFor();
    expect(await initech.locator('.state').textContent()).toBe('Active');

    await initech.getByRole('button', { name: 'Disable Initech' }).press('Enter');
    await initech.getByRole('button', { name: 'Enable Initech' }).waitFor();
    expect(await initech.locator('.state').textContent()).toBe('Disabled');
    expect(tenantry.catalog.get('Initech')?.state).toBe('disabled');

    const sql = page.getByRole('region', { name: 'Run SQL as a tenant' });
    await sql.getByLabel('Tenant').selectOption({ label: 'HomeDepot' });
    await sql.getByLabel('SQL statement').fill('select name from customer order by 1');
    await sql.getByLabel('SQL statement').press('Control+Enter');
    await sql.getByText(/^3 rows as HomeDepot/).waitFor();
    const names = await sql.locator('#sql-result tbody td').allTextContents();
    expect(names).toEqual(HOME_DEPOT);
    const shown = (await sql.locator('#sql-result').textContent()) ?? '';
    for (const lowes of LOWES) expect(shown).not.toContain(lowes);

    // The chart and the table pick up HomeDepot's query at the next poll.
    await page
      .getByRole('region', { name: 'Activity' })
      .getByText(/^HomeDepot: /)
      .waitFor();
    const users = page.getByRole('region', { name: 'Users' });
    await users.getByLabel('Domain').selectOption('HomeDepot');
    await users.getByRole('row', { name: /alice@HomeDepot/ }).waitFor();
    expect(problems).toEqual([]);
  });
});
