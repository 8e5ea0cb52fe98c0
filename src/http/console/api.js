// The console's only way out: the tenantry HTTP API, with the admin token kept in this tab.
/* global sessionStorage, fetch */

/**
 * @typedef {object} Tenant
 * @property {number} id
 * @property {string} uuid
 * @property {string} name
 * @property {'default' | 'regular' | 'super' | 'group'} kind
 * @property {'active' | 'disabled' | 'locked'} state
 * @property {'shared' | 'schema' | 'database'} isolation
 * @property {string} server
 * @property {string} createdAt
 */

/**
 * @typedef {object} Stats
 * @property {{ pools: number, waiters: number,
 *   servers: { server: string, budget: number, total: number, inUse: number, idle: number }[],
 *   tenants: { tenantId: number, tenantName: string, inUse: number, waiting: number }[] }} pools
 * @property {{ clients: number, active: number, tenants: { tenant: string, clients: number, active: number }[] } | null} gateway
 * @property {{ tenant: string, queries: number, errors: number }[]} tenants
 */

/** @typedef {{ name: string, tenant: { id: number, name: string }, authSystem: string }} Domain */
/** @typedef {{ ref: string, name: string, domain: string, permission: string, tenant: { id: number, name: string }, createdAt: string }} User */

/**
 * @typedef {object} SqlResult
 * @property {string} command
 * @property {number | null} rowCount
 * @property {{ name: string, dataTypeID: number }[]} fields
 * @property {Record<string, unknown>[]} rows
 * @property {boolean} truncated
 */

const KEY = 'tenantry.adminToken';

/** The admin token of this tab (sessionStorage: gone when the tab closes). */
export const token = {
  /** @returns {string} */
  get: () => sessionStorage.getItem(KEY) ?? '',
  /** @param {string} value */
  set: (value) => sessionStorage.setItem(KEY, value),
  clear: () => sessionStorage.removeItem(KEY),
};

/** An error answer of the API: its HTTP status, its stable code and its message. */
export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string} code
   * @param {string} message
   */
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/**
 * Calls the API with the admin token; answers the parsed JSON body (null when empty) or throws
 * an {@link ApiError}. `tenant` (an id) becomes the x-tenant-id header.
 * @param {'GET' | 'POST' | 'DELETE'} method
 * @param {string} path
 * @param {{ body?: unknown, tenant?: number }} [options]
 * @returns {Promise<unknown>}
 */
export async function api(method, path, options = {}) {
  /** @type {Record<string, string>} */
  const headers = { accept: 'application/json', authorization: `Bearer ${token.get()}` };
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  if (options.tenant !== undefined) headers['x-tenant-id'] = String(options.tenant);
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      cache: 'no-store',
      ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
    });
  } catch {
    throw new ApiError(0, 'NETWORK', 'The tenantry server does not answer.');
  }
  const text = await response.text();
  /** @type {unknown} */
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const body = /** @type {{ code?: string, message?: string } | null} */ (data);
    throw new ApiError(
      response.status,
      body?.code ?? `HTTP_${response.status}`,
      body?.message ?? (response.statusText || 'Request failed.'),
    );
  }
  return data;
}

/**
 * A one-line description of an error for the page.
 * @param {unknown} error
 * @returns {string}
 */
export function describe(error) {
  if (error instanceof ApiError) return error.status ? `${error.code}: ${error.message}` : error.message;
  return error instanceof Error ? error.message : String(error);
}
