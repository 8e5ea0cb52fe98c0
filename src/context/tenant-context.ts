import { AsyncLocalStorage } from 'node:async_hooks';
import { TenantryError } from '../errors.js';
import type { Tenant } from '../catalog/index.js';

/** What tenantry keeps for the code running on behalf of one tenant. */
export interface TenantContext {
  /** The tenant the code acts for. */
  readonly tenant: Tenant;
  /** @internal The tenant-scoped handle of this context. */
  readonly db?: unknown;
  /** @internal The open transaction, when the code runs inside `db.transaction()`. */
  readonly transaction?: unknown;
}

const storage = new AsyncLocalStorage<TenantContext>();

/**
 * Runs `fn` with `context` as the current tenant context. The context follows `fn` through
 * awaits, timers, promise chains, async iterators and streams, and never leaks into
 * concurrent work started outside it. Prefer `tenantry.withTenant()`, which resolves and
 * checks the tenant first.
 */
export function runInTenantContext<T>(context: TenantContext, fn: () => T): T {
  return storage.run(Object.freeze({ ...context }), fn);
}

/** The current tenant context, or `undefined` outside any. */
export function tryGetTenantContext(): TenantContext | undefined {
  return storage.getStore();
}

/** The current tenant; throws `TENANTRY_ERR_NO_TENANT` when no tenant is in context. */
export function getTenant(): Tenant {
  const context = storage.getStore();
  if (!context) throw new TenantryError('NO_TENANT');
  return context.tenant;
}

/** The current tenant, or `undefined` when no tenant is in context. */
export function tryGetTenant(): Tenant | undefined {
  return storage.getStore()?.tenant;
}
