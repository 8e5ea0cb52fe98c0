// "Run SQL as a tenant": POST /v1/sql with the admin token and x-tenant-id (the tenant's own role).
/* global performance */
import { api, describe } from './api.js';
import { el, say, setOptions } from './dom.js';

/** @typedef {import('./api.js').Tenant} Tenant */
/** @typedef {import('./api.js').SqlResult} SqlResult */

/**
 * One cell's text: NULL marked, objects as JSON, everything else as is.
 * @param {unknown} value
 * @returns {HTMLElement}
 */
function cell(value) {
  if (value === null || value === undefined) return el('td', { class: 'null', text: 'NULL' });
  if (typeof value === 'number' || typeof value === 'bigint')
    return el('td', { class: 'num', text: String(value) });
  return el('td', { text: typeof value === 'string' ? value : JSON.stringify(value) });
}

/** The SQL form, its tenant picker and the result table. */
export class SqlRunner {
  /**
   * @param {{ form: HTMLFormElement, tenant: HTMLSelectElement, text: HTMLTextAreaElement,
   *   status: HTMLElement, result: HTMLTableElement }} parts
   */
  constructor(parts) {
    this.parts = parts;
    parts.form.addEventListener('submit', (event) => {
      event.preventDefault();
      void this.run();
    });
    parts.text.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        parts.form.requestSubmit();
      }
    });
  }

  /**
   * Offers the tenants that have data of their own (regular and default ones).
   * @param {Tenant[]} tenants
   */
  setTenants(tenants) {
    const usable = tenants.filter((t) => t.kind === 'regular' || t.kind === 'default');
    setOptions(
      this.parts.tenant,
      usable.map((t) => ({
        value: String(t.id),
        label: t.state === 'active' ? t.name : `${t.name} (${t.state})`,
      })),
    );
  }

  async run() {
    const { tenant, text, status, result, form } = this.parts;
    const sql = text.value.trim();
    const name = tenant.selectedOptions[0]?.textContent ?? tenant.value;
    if (!sql || !tenant.value) {
      say(status, !sql ? 'Type a statement first.' : 'Choose a tenant first.', 'error');
      return;
    }
    form.setAttribute('aria-busy', 'true');
    say(status, `Running as ${name}…`);
    const started = performance.now();
    try {
      const answer = /** @type {SqlResult} */ (
        await api('POST', '/v1/sql', { body: { sql }, tenant: Number(tenant.value) })
      );
      const ms = Math.round(performance.now() - started);
      this.#show(answer);
      const rows = answer.rows.length;
      const what =
        answer.command === 'SELECT' || answer.fields.length > 0
          ? `${rows} ${rows === 1 ? 'row' : 'rows'}`
          : `${answer.command} ${answer.rowCount ?? ''}`.trim();
      const cut = answer.truncated ? ` (truncated at ${rows} rows)` : '';
      say(status, `${what} as ${name} in ${ms} ms${cut}.`, 'ok');
    } catch (error) {
      result.replaceChildren();
      result.hidden = true;
      say(status, `Failed as ${name}: ${describe(error)}`, 'error');
    } finally {
      form.removeAttribute('aria-busy');
    }
  }

  /** @param {SqlResult} answer */
  #show(answer) {
    const { result } = this.parts;
    const columns =
      answer.fields.length > 0 ? answer.fields.map((f) => f.name) : Object.keys(answer.rows[0] ?? {});
    result.hidden = columns.length === 0;
    result.replaceChildren(
      el('caption', { class: 'sr-only', text: 'Result rows' }),
      el('thead', {}, el('tr', {}, ...columns.map((c) => el('th', { scope: 'col', text: c })))),
      el('tbody', {}, ...answer.rows.map((row) => el('tr', {}, ...columns.map((c) => cell(row[c]))))),
    );
  }
}
