// The tenantry console: sign-in with the admin token, then a dashboard polled every two seconds.
/* global document, window */
import { ApiError, api, describe, token } from './api.js';
import { ActivityChart } from './chart.js';
import { byId, say, setOptions } from './dom.js';
import { SqlRunner } from './sql.js';
import { TenantsTable, bindCreate } from './tenants.js';
import { UsersView } from './users.js';

/** @typedef {import('./api.js').Tenant} Tenant */
/** @typedef {import('./api.js').Stats} Stats */

const POLL_MS = 2000;

const signIn = byId('sign-in', HTMLElement);
const dashboard = byId('dashboard', HTMLElement);
const notice = byId('notice', HTMLElement);
const signInError = byId('sign-in-error', HTMLElement);
const tokenInput = byId('token', HTMLInputElement);
const signOut = byId('sign-out', HTMLButtonElement);
const summary = byId('summary', HTMLElement);

const tenantsTable = new TenantsTable(
  byId('tenants-body', HTMLTableSectionElement),
  notice,
  () => void refresh(),
);
const chart = new ActivityChart(
  byId('chart', HTMLElement),
  byId('legend', HTMLUListElement),
  byId('chart-tenant', HTMLSelectElement),
);
const sql = new SqlRunner({
  form: byId('sql-form', HTMLFormElement),
  tenant: byId('sql-tenant', HTMLSelectElement),
  text: byId('sql-text', HTMLTextAreaElement),
  status: byId('sql-status', HTMLElement),
  result: byId('sql-result', HTMLTableElement),
});
const users = new UsersView({
  domain: byId('domain', HTMLSelectElement),
  body: byId('users-body', HTMLTableSectionElement),
  status: byId('users-status', HTMLElement),
  reload: byId('users-reload', HTMLButtonElement),
});
bindCreate(
  byId('create-form', HTMLFormElement),
  byId('new-name', HTMLInputElement),
  byId('new-isolation', HTMLSelectElement),
  notice,
  () => void refresh(),
);

/** @type {{ t: number, counts: Map<string, { queries: number, errors: number }> } | undefined} */
let previous;
/** @type {number | undefined} */
let timer;
/** The last refresh failed (the next good one says so). */
let offline = false;

/** Answers the per-second rates between the last poll and this one (null on the first poll). */
function rates(/** @type {Stats} */ stats) {
  const now = Date.now();
  const counts = new Map(stats.tenants.map((t) => [t.tenant, { queries: t.queries, errors: t.errors }]));
  const before = previous;
  previous = { t: now, counts };
  if (!before || now <= before.t) return null;
  const seconds = (now - before.t) / 1000;
  /** @type {Map<string, { queries: number, errors: number }>} */
  const out = new Map();
  for (const [name, c] of counts) {
    const b = before.counts.get(name) ?? { queries: 0, errors: 0 };
    // Counters only grow; a drop means the "other" bucket was regrouped: count it as no change.
    out.set(name, {
      queries: Math.max(0, c.queries - b.queries) / seconds,
      errors: Math.max(0, c.errors - b.errors) / seconds,
    });
  }
  chart.add({ t: now, rates: out });
  return out;
}

/** The header line: connections per server and gateway clients. */
function describeStats(/** @type {Stats} */ stats) {
  const servers = stats.pools.servers.map(
    (s) => `${s.server}: ${s.inUse} in use, ${s.total} open of ${s.budget}`,
  );
  const gateway = stats.gateway ? `gateway ${stats.gateway.clients} clients` : 'no gateway';
  return [...servers, `${stats.pools.waiters} waiting`, gateway].join(' · ');
}

/** Polls tenants and stats and updates the page; false when the token was refused (signed out). */
async function refresh() {
  try {
    const [tenants, stats] = /** @type {[Tenant[], Stats]} */ (
      await Promise.all([api('GET', '/v1/admin/tenants'), api('GET', '/v1/admin/stats')])
    );
    const perSecond = rates(stats);
    /** @type {Map<number, number>} */
    const inUse = new Map();
    for (const p of stats.pools.tenants) inUse.set(p.tenantId, (inUse.get(p.tenantId) ?? 0) + p.inUse);
    const clients = stats.gateway ? new Map(stats.gateway.tenants.map((g) => [g.tenant, g.clients])) : null;
    const queryRates = perSecond ? new Map([...perSecond].map(([name, r]) => [name, r.queries])) : null;
    tenantsTable.update(tenants, { inUse, clients, rates: queryRates });
    byId('tenants-count', HTMLElement).textContent = `${tenants.length} tenants`;
    sql.setTenants(tenants);
    const chartable = tenants
      .filter((t) => t.kind !== 'group')
      .map((t) => ({ value: t.name, label: t.name }));
    setOptions(byId('chart-tenant', HTMLSelectElement), [{ value: '', label: 'All tenants' }, ...chartable]);
    summary.textContent = describeStats(stats);
    if (offline) say(notice, 'Connected again.', 'ok');
    offline = false;
    return true;
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      leave('The server refused the admin token; sign in again.');
      return false;
    }
    say(notice, `Cannot refresh: ${describe(error)}`, 'error');
    offline = true;
    return true;
  }
}

function poll() {
  window.clearTimeout(timer);
  timer = window.setTimeout(() => {
    if (!document.hidden) void refresh();
    poll();
  }, POLL_MS);
}

/** Shows the dashboard and starts polling; `focus` moves keyboard focus to it (after a sign-in). */
async function enter(focus = false) {
  signIn.hidden = true;
  dashboard.hidden = false;
  signOut.hidden = false;
  previous = undefined;
  if (!(await refresh())) return;
  if (focus) byId('tenants-title', HTMLElement).focus();
  poll();
  await users.load();
}

/** Back to the sign-in form (token forgotten), with a message. */
function leave(/** @type {string} */ message) {
  window.clearTimeout(timer);
  token.clear();
  dashboard.hidden = true;
  signOut.hidden = true;
  signIn.hidden = false;
  summary.textContent = '';
  say(signInError, message, message ? 'error' : 'info');
  tokenInput.focus();
}

byId('sign-in-form', HTMLFormElement).addEventListener('submit', (event) => {
  event.preventDefault();
  const value = tokenInput.value.trim();
  if (!value) return;
  token.set(value);
  say(signInError, 'Signing in…');
  void api('GET', '/v1/admin/tenants').then(
    async () => {
      tokenInput.value = '';
      say(signInError, '');
      await enter(true);
    },
    (/** @type {unknown} */ error) =>
      leave(
        error instanceof ApiError && error.status === 401 ? 'That is not the admin token.' : describe(error),
      ),
  );
});
signOut.addEventListener('click', () => leave(''));
window.addEventListener('resize', () => chart.render());

if (token.get()) void enter();
else tokenInput.focus();
