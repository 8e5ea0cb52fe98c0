import type pg from 'pg';
import type { CatalogRoles } from '../catalog/index.js';

/** How bad an isolation hazard is: `high` can let one tenant reach another's rows today. */
export type Severity = 'high' | 'medium' | 'low';

/** One isolation hazard the audit found, with what to do about it. */
export interface Finding {
  /** Stable id of the check that found it, e.g. `rls-not-forced`. */
  readonly check: string;
  readonly severity: Severity;
  /** The object concerned: a table, view, function, role, schema or tenant. */
  readonly object: string;
  /** What is wrong and why it matters. */
  readonly message: string;
  /** How to fix it (usually SQL, or a tenantry command). */
  readonly fix: string;
}

/** What {@link audit} answers. */
export interface AuditReport {
  /** The database audited. */
  readonly database: string;
  /** When the audit ran (ISO 8601). */
  readonly checkedAt: string;
  /** Findings, most severe first. */
  readonly findings: readonly Finding[];
  /** How many findings of each severity. */
  readonly summary: Readonly<Record<Severity, number>>;
}

/** Anything that runs a query: a pool, a client. */
export type Queryable = Pick<pg.ClientBase, 'query'>;

/** A multi-tenant table as registered in the catalog. */
export interface RegisteredFact {
  readonly schema: string;
  readonly table: string;
  /** Qualified and quoted, e.g. `public."order"`. */
  readonly qualified: string;
  readonly tenantColumn: string;
  /** The table's oid, or null when the registered table no longer exists. */
  readonly oid: number | null;
  /** Whether a tenant group shares a segment of it. */
  readonly grouped: boolean;
}

/** A table that holds several tenants' rows: a registered table or a schema tenant's copy of one. */
export interface DataTable {
  readonly oid: number;
  /** Its qualified, quoted name (`public.customer`). */
  readonly name: string;
  readonly tenantColumn: string;
  /** The registered table it is (or copies), qualified. */
  readonly base: string;
  /** For a schema tenant's copy: that tenant's name. */
  readonly copyOf: string | null;
  readonly grouped: boolean;
  /** One of tenantry's own runtime tables (jobs, outbox, id counters), not a registered one. */
  readonly runtime: boolean;
}

/** A tenant as the catalog records it. */
export interface TenantFact {
  readonly id: number;
  readonly uuid: string;
  readonly name: string;
  readonly kind: string;
  readonly state: string;
  readonly isolation: string;
  readonly server: string;
  readonly schemaName: string | null;
  readonly databaseName: string | null;
}

/** A role tenants' SQL can run as, directly or through membership. */
export interface ReachableRole {
  readonly oid: number;
  readonly name: string;
  readonly superuser: boolean;
  readonly bypassRls: boolean;
  readonly createRole: boolean;
  readonly createDb: boolean;
}

/** What the checks know about the database before they start. */
export interface AuditFacts {
  readonly database: string;
  readonly roles: CatalogRoles;
  readonly tenants: readonly TenantFact[];
  /** Login roles registered for tenants (tenantry.tenant_role). */
  readonly tenantRoles: ReadonlyMap<string, { readonly tenantId: number; readonly permission: string }>;
  readonly registered: readonly RegisteredFact[];
  readonly dataTables: readonly DataTable[];
  /** Roles tenant SQL reaches: tenant login roles, the application role, and their groups. */
  readonly reachable: ReadonlyMap<number, ReachableRole>;
  /** tenantry's sequences by name: `multi_tenant` or `shared`. */
  readonly sequences: ReadonlyMap<string, string>;
}

/** A group of checks. */
export type Check = (db: Queryable, facts: AuditFacts) => Promise<Finding[]>;
