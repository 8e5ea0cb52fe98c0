import type { Tenant } from '../catalog/index.js';
import { isConnectionError, type Lease, type PoolTarget } from '../pool/index.js';
import type { PreludeStatement, TenantRoute } from '../session/index.js';
import { ScanSession } from './session.js';
import type { ScanFailure } from './scan.js';

/** What a scan needs from its tenantry instance. */
export interface ScanHost {
  /** Regular tenants (id, name, kind, state) matching `where`, in id order. */
  selectTenants(where: string | undefined): Promise<Tenant[]>;
  /** The group memberships (any table) of tenants `ids`. */
  groupMemberships(ids: readonly number[]): Promise<{ tenant: number; group: number }[]>;
  /** Throws the tenant's state error when it may not be used right now. */
  check(tenant: Tenant): void;
  /** The application-role route of a tenant: its pool and its settings. */
  route(tenant: Tenant): TenantRoute;
  /** Checks a connection out of the pool of pools. */
  acquire(target: PoolTarget): Promise<Lease>;
  /** Connections a scan may hold at once (the catalog server's budget). */
  connectionBudget(): number;
}

/** Sets tenantry.skip_groups: the groups a tenant leaves to another scanned member ('' = none). */
function skipGroupsStatement(groups: string): PreludeStatement {
  return {
    text: `SELECT pg_catalog.set_config('tenantry.skip_groups', '${groups}', true)`,
    prepared: {
      name: 'tenantry_scan_skip',
      text: "SELECT pg_catalog.set_config('tenantry.skip_groups', $1, true)",
      values: [groups],
    },
  };
}

/**
 * For skipGroupDuplicates: each group is read through the scanned member with the lowest id;
 * answers, per other scanned member, the groups it leaves out ('5,9'; digits and commas only).
 */
export function groupSkips(memberships: readonly { tenant: number; group: number }[]): Map<number, string> {
  const reader = new Map<number, number>();
  for (const { tenant, group } of memberships) {
    const current = reader.get(group);
    if (current === undefined || tenant < current) reader.set(group, tenant);
  }
  const skipped = new Map<number, number[]>();
  for (const { tenant, group } of memberships) {
    if (reader.get(group) === tenant) continue;
    const list = skipped.get(tenant) ?? [];
    if (!list.includes(group)) list.push(group);
    skipped.set(tenant, list);
  }
  return new Map([...skipped].map(([tenant, groups]) => [tenant, groups.sort((a, b) => a - b).join(',')]));
}

/** What every part of one scan shares. */
export class ScanContext {
  readonly host: ScanHost;
  readonly values: readonly unknown[] | undefined;
  /** Per tenant, the groups it leaves to another scanned member (see {@link groupSkips}). */
  readonly skip: ReadonlyMap<number, string>;
  readonly partial: boolean;
  readonly failures: ScanFailure[];
  readonly fetchSize: number;
  /** Connections the scan holds at most. */
  readonly lanes: number;
  readonly #settings = new Map<number, readonly PreludeStatement[]>();

  constructor(options: {
    host: ScanHost;
    values: readonly unknown[] | undefined;
    skip: ReadonlyMap<number, string>;
    partial: boolean;
    failures: ScanFailure[];
    fetchSize: number;
    lanes: number;
  }) {
    this.host = options.host;
    this.values = options.values;
    this.skip = options.skip;
    this.partial = options.partial;
    this.failures = options.failures;
    this.fetchSize = options.fetchSize;
    this.lanes = options.lanes;
  }

  /** The groups tenant `t` leaves to another scanned member ('' = none; skipGroupDuplicates). */
  skips(t: Tenant): string {
    return this.skip.get(t.id) ?? '';
  }

  /** The statements that make a transaction act as `tenant` (its route's, and the group setting). */
  settingsOf(tenant: Tenant): readonly PreludeStatement[] {
    let settings = this.#settings.get(tenant.id);
    if (!settings) {
      settings = [...this.host.route(tenant).prelude, skipGroupsStatement(this.skips(tenant))];
      this.#settings.set(tenant.id, settings);
    }
    return settings;
  }

  /**
   * Handles a tenant's failure: rethrown under `onError: 'fail'`, recorded under `partial`.
   * Errors that are not about the tenant (a lost connection) always end the scan.
   */
  fail(tenant: Tenant, error: unknown): void {
    if (!this.partial || isConnectionError(error)) throw error;
    this.failures.push({
      tenant: tenant.name,
      error: error instanceof Error ? error : new Error(String(error)),
    });
  }
}

function targetKey(target: PoolTarget): string {
  return `${target.server}\0${target.identity}`;
}

/**
 * One connection slot of a scan. It keeps its session while the tenants it serves share a pool
 * (all shared and schema tenants do); a tenant of another database gets a new session.
 */
export class Lane {
  readonly #host: ScanHost;
  #session: ScanSession | undefined;
  #key: string | undefined;

  constructor(host: ScanHost) {
    this.#host = host;
  }

  /** The session for `tenant`'s pool, opened (or switched) as needed. */
  async session(tenant: Tenant): Promise<ScanSession> {
    const route = this.#host.route(tenant);
    const key = targetKey(route.target);
    if (!this.#session || this.#key !== key) {
      await this.close();
      this.#session = new ScanSession(await this.#host.acquire(route.target));
      this.#key = key;
    }
    if (route.schema) this.#session.noteSchema(route.schema);
    return this.#session;
  }

  /** Ends the session's transaction and returns its connection. */
  async close(): Promise<void> {
    const session = this.#session;
    this.#session = undefined;
    this.#key = undefined;
    await session?.close();
  }
}
