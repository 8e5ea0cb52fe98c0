// Users per sign-on domain: /v1/admin/domains for the picker, /v1/admin/users?domain= for the table.
import { api, describe } from './api.js';
import { el, say, setOptions } from './dom.js';

/** @typedef {import('./api.js').Domain} Domain */
/** @typedef {import('./api.js').User} User */

/**
 * A date for the table: the local date (the exact instant stays in <time datetime>).
 * @param {string} iso
 * @returns {string}
 */
function when(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleDateString(undefined, { dateStyle: 'medium' });
}

/** The domain picker and the users of the chosen domain. */
export class UsersView {
  /**
   * @param {{ domain: HTMLSelectElement, body: HTMLTableSectionElement, status: HTMLElement,
   *   reload: HTMLButtonElement }} parts
   */
  constructor(parts) {
    this.parts = parts;
    parts.domain.addEventListener('change', () => void this.showUsers());
    parts.reload.addEventListener('click', () => void this.load());
  }

  /** Loads the domains, then the users of the chosen one (the first by default). */
  async load() {
    const { domain, status } = this.parts;
    try {
      const listed = /** @type {Domain[]} */ (await api('GET', '/v1/admin/domains'));
      // Named domains first: the blank domain (the default tenant's) rarely has users.
      const domains = [...listed.filter((d) => d.name), ...listed.filter((d) => !d.name)];
      setOptions(
        domain,
        domains.map((d) => ({
          value: d.name,
          label: `${d.name || '(blank domain)'} → ${d.tenant.name}`,
        })),
      );
      if (domains.length === 0) {
        this.parts.body.replaceChildren();
        say(status, 'No sign-on domains yet.');
        return;
      }
      await this.showUsers();
    } catch (error) {
      say(status, `Could not list domains: ${describe(error)}`, 'error');
    }
  }

  async showUsers() {
    const { domain, body, status } = this.parts;
    const name = domain.value;
    try {
      const users = /** @type {User[]} */ (
        await api('GET', `/v1/admin/users?domain=${encodeURIComponent(name)}`)
      );
      body.replaceChildren(
        ...users.map((u) =>
          el(
            'tr',
            {},
            el('th', { scope: 'row', text: u.ref }),
            el('td', { text: u.permission }),
            el('td', { text: u.tenant.name }),
            el('td', {}, el('time', { datetime: u.createdAt, text: when(u.createdAt) })),
          ),
        ),
      );
      const label = name || '(blank domain)';
      say(status, `${users.length} ${users.length === 1 ? 'user' : 'users'} in domain ${label}.`);
    } catch (error) {
      body.replaceChildren();
      say(status, `Could not list users: ${describe(error)}`, 'error');
    }
  }
}
