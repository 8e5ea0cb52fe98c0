// The tenants table (state, isolation, server, live connections, queries/s) and its actions.
import { api, describe } from './api.js';
import { el, formatRate, say } from './dom.js';

/** @typedef {import('./api.js').Tenant} Tenant */

/**
 * What the latest poll measured, per tenant.
 * @typedef {object} Figures
 * @property {Map<number, number>} inUse pooled connections in use, by tenant id
 * @property {Map<string, number> | null} clients gateway clients by tenant name (null: no gateway)
 * @property {Map<string, number> | null} rates queries/s by tenant name (null before two polls)
 */

/**
 * @typedef {object} Row
 * @property {HTMLTableRowElement} tr
 * @property {HTMLElement[]} cells kind, state, isolation, server, live, clients, rate
 * @property {HTMLButtonElement[]} buttons [disable|enable, lock|unlock]
 */

const LABELS = /** @type {const} */ ({ disabled: 'Disabled', locked: 'Locked', active: 'Active' });

/** The table body of tenants, updated in place so keyboard focus survives every poll. */
export class TenantsTable {
  /** @type {Map<number, Row>} */
  #rows = new Map();
  /** @type {Figures} */
  #figures = { inUse: new Map(), clients: null, rates: null };

  /**
   * @param {HTMLTableSectionElement} body
   * @param {HTMLElement} notice live region for outcomes
   * @param {() => void} changed called after an action changed a tenant
   */
  constructor(body, notice, changed) {
    this.body = body;
    this.notice = notice;
    this.changed = changed;
  }

  /**
   * @param {Tenant[]} tenants
   * @param {Figures} figures
   */
  update(tenants, figures) {
    this.#figures = figures;
    const seen = new Set();
    tenants.forEach((tenant, index) => {
      seen.add(tenant.id);
      let row = this.#rows.get(tenant.id);
      if (!row) this.#rows.set(tenant.id, (row = this.#create(tenant)));
      this.#fill(row, tenant);
      const at = this.body.children[index];
      if (at !== row.tr) this.body.insertBefore(row.tr, at ?? null);
    });
    for (const [id, row] of this.#rows) {
      if (seen.has(id)) continue;
      row.tr.remove();
      this.#rows.delete(id);
    }
  }

  /** @param {Tenant} tenant @returns {Row} */
  #create(tenant) {
    const cells = [0, 1, 2, 3, 4, 5, 6].map((i) => el('td', { class: i >= 4 ? 'num' : undefined }));
    const buttons = tenant.kind === 'group' ? [] : [0, 1].map(() => el('button', { type: 'button' }));
    for (const button of buttons) button.addEventListener('click', () => void this.#act(tenant, button));
    const tr = el(
      'tr',
      {},
      el('th', { scope: 'row', text: tenant.name }),
      ...cells,
      el('td', { class: 'actions' }, ...buttons),
    );
    return { tr, cells, buttons };
  }

  /** @param {Row} row @param {Tenant} tenant */
  #fill(row, tenant) {
    const f = this.#figures;
    const [kind, state, isolation, server, live, clients, rate] = row.cells;
    if (!kind || !state || !isolation || !server || !live || !clients || !rate) return;
    kind.textContent = tenant.kind;
    state.replaceChildren(
      el('span', { class: 'state', 'data-state': tenant.state, text: LABELS[tenant.state] }),
    );
    isolation.textContent = tenant.isolation;
    server.textContent = tenant.server;
    live.textContent = String(f.inUse.get(tenant.id) ?? 0);
    clients.textContent = f.clients ? String(f.clients.get(tenant.name) ?? 0) : '–';
    rate.textContent = f.rates ? formatRate(f.rates.get(tenant.name) ?? 0) : '–';
    const [toggle, lock] = row.buttons;
    if (toggle) label(toggle, tenant.state === 'disabled' ? 'enable' : 'disable', tenant.name);
    if (lock) label(lock, tenant.state === 'locked' ? 'unlock' : 'lock', tenant.name);
  }

  /** @param {Tenant} tenant @param {HTMLButtonElement} button */
  async #act(tenant, button) {
    if (button.getAttribute('aria-busy') === 'true') return;
    const action = button.dataset.action ?? '';
    button.setAttribute('aria-busy', 'true');
    try {
      const path = `/v1/admin/tenants/${tenant.id}/${action}`;
      const updated = /** @type {Tenant} */ (await api('POST', path));
      const row = this.#rows.get(updated.id);
      if (row) this.#fill(row, updated);
      say(this.notice, `Tenant ${updated.name} is now ${updated.state}.`, 'ok');
      this.changed();
    } catch (error) {
      say(this.notice, `Could not ${action} ${tenant.name}: ${describe(error)}`, 'error');
    } finally {
      button.removeAttribute('aria-busy');
    }
  }
}

/**
 * Sets a row button's action and its visible and accessible labels ("Disable", "Disable Acme").
 * @param {HTMLButtonElement} button
 * @param {string} action
 * @param {string} tenant
 */
function label(button, action, tenant) {
  if (button.dataset.action === action) return;
  const text = `${action[0]?.toUpperCase() ?? ''}${action.slice(1)}`;
  button.dataset.action = action;
  button.textContent = text;
  button.setAttribute('aria-label', `${text} ${tenant}`);
  button.className = action === 'disable' || action === 'lock' ? 'quiet warn' : 'quiet';
}

/**
 * Wires the "create tenant" form: POST /v1/admin/tenants, then announces and refreshes.
 * @param {HTMLFormElement} form
 * @param {HTMLInputElement} name
 * @param {HTMLSelectElement} isolation
 * @param {HTMLElement} notice
 * @param {() => void} changed
 */
export function bindCreate(form, name, isolation, notice, changed) {
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const body = { name: name.value.trim(), isolation: isolation.value };
    if (!body.name) return;
    void api('POST', '/v1/admin/tenants', { body }).then(
      (created) => {
        const tenant = /** @type {Tenant} */ (created);
        say(notice, `Tenant ${tenant.name} created (${tenant.isolation} isolation).`, 'ok');
        name.value = '';
        changed();
      },
      (error) => say(notice, `Could not create ${body.name}: ${describe(error)}`, 'error'),
    );
  });
}
