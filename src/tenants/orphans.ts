import type pg from 'pg';
import type { CatalogRoles } from '../catalog/index.js';

/** Anything that runs a query: a pool, a client. */
export type Queryable = Pick<pg.ClientBase, 'query'>;

/**
 * Namespace of the session-level advisory lock (on the catalog database) a process holds while
 * it creates or drops a tenant's objects outside a catalog transaction; the second key is
 * `hashtext(tenant_uuid::text)`. Repair leaves a tenant whose lock is held alone.
 */
export const TENANT_OBJECTS_LOCK = 1952803950;

/** A tenant object (`tenantry_t_…` / `tenantry_f_…`) that belongs to no tenant of the catalog. */
export interface OrphanObject {
  /** The registered server it is on. */
  readonly server: string;
  readonly kind: 'database' | 'role' | 'schema';
  readonly name: string;
  /**
   * How it is known to be this catalog's: `record` (tenantry.tenant_object_intent: a creation or
   * drop that did not finish), `membership` (a login role in this catalog's tenant groups, or a
   * member of such an orphan), `schema` (a schema in the catalog database).
   */
  readonly evidence: 'record' | 'membership' | 'schema';
  /** The uuid (32 hex digits, no dashes) its name carries. */
  readonly tenant: string;
  /** A live process is creating or dropping it right now (its advisory lock is held): leave it. */
  readonly inProgress: boolean;
}

/** Tenant object names: roles (`_m<N>` of a move, `_r`/`_w` per permission), databases, schemas. */
const ROLE_PATTERN = '^tenantry_t_[0-9a-f]{32}(_m[0-9]+)?(_[rw])?$';
const SCHEMA_PATTERN = '^tenantry_[ft]_[0-9a-f]{32}$';

/** The 32 hex digits of a tenant object name. */
export function objectTenant(name: string): string {
  return /^tenantry_[ft]_([0-9a-f]{32})/.exec(name)?.[1] ?? '';
}

/** What the catalog knows: every tenant's uuid, and every object a tenant or a move names. */
export interface KnownObjects {
  /** Uuids (hex, no dashes) of every catalog tenant (and tenant group). */
  readonly tenants: ReadonlySet<string>;
  /** Names of databases, roles and schemas the catalog or a move under way records. */
  readonly names: ReadonlySet<string>;
  /** Whether tenantry.tenant_object_intent exists (catalog version ≥ 24). */
  readonly records: boolean;
}

/** Reads {@link KnownObjects} from the catalog database. */
export async function knownObjects(catalog: Queryable): Promise<KnownObjects> {
  const { rows } = await catalog.query<{
    uuids: string[];
    names: string[];
    records: boolean;
    moves: boolean;
  }>(
    `SELECT ARRAY(SELECT replace(uuid::text, '-', '') FROM tenantry.tenant) AS uuids,
            ARRAY(SELECT n FROM tenantry.tenant t, LATERAL (VALUES (t.schema_name), (t.database_name)) v(n)
                  WHERE n IS NOT NULL
                  UNION SELECT role_name FROM tenantry.tenant_role) AS names,
            to_regclass('tenantry.tenant_object_intent') IS NOT NULL AS records,
            to_regclass('tenantry.tenant_move') IS NOT NULL AS moves`,
  );
  const row = rows[0];
  const names = new Set(row?.names ?? []);
  if (row?.moves) {
    // A tenant being moved has a second copy (the move's target, or its source until cleanup).
    const { rows: moves } = await catalog.query<{ name: string }>(
      `SELECT p->>'database' AS name FROM tenantry.tenant_move m, LATERAL (VALUES (m.source), (m.target)) v(p)
       WHERE p->>'database' IS NOT NULL
       UNION SELECT jsonb_array_elements_text(coalesce(p->'roles', '[]'::jsonb))
       FROM tenantry.tenant_move m, LATERAL (VALUES (m.source), (m.target)) v(p)`,
    );
    for (const { name } of moves) names.add(name);
  }
  return { tenants: new Set(row?.uuids ?? []), names, records: row?.records ?? false };
}

/** Tenant login roles in this catalog's tenant groups, and their members (recursively). */
async function groupMembers(db: Queryable, roles: CatalogRoles): Promise<string[]> {
  const { rows } = await db.query<{ name: string }>(
    `WITH RECURSIVE m(oid, name) AS (
       SELECT r.oid, r.rolname::text FROM pg_auth_members am
       JOIN pg_roles g ON g.oid = am.roleid JOIN pg_roles r ON r.oid = am.member
       WHERE g.rolname = ANY($1::name[]) AND r.rolname ~ $2
       UNION SELECT r.oid, r.rolname::text FROM m JOIN pg_auth_members am ON am.roleid = m.oid
       JOIN pg_roles r ON r.oid = am.member WHERE r.rolname ~ $2)
     SELECT name FROM m ORDER BY name`,
    [[roles.tenants, roles.global], ROLE_PATTERN],
  );
  return rows.map((r) => r.name);
}

/** Whether the catalog knows `name` (its tenant exists, or a move or tenant row names it). */
function isKnown(known: KnownObjects, name: string): boolean {
  return known.names.has(name) || known.tenants.has(objectTenant(name));
}

/**
 * The tenant objects on one server that belong to this catalog but to none of its tenants:
 * recorded creations and drops that did not finish (with their advisory lock free, or marked
 * `inProgress`), login roles in the catalog's tenant groups, and — on `main` — tenant schemas of
 * the catalog database. Databases and roles are cluster-wide and may belong to another tenantry
 * catalog on the same server: only those with evidence of being this catalog's are answered.
 *
 * `catalog` is a connection to the catalog database, `server` one to the server (the same for
 * `main`); both only read. `recordsOnly` answers only the recorded ones; `memberships: false`
 * leaves out the login roles found by group membership (the recursive role query).
 */
export async function findOrphans(
  catalog: Queryable,
  roles: CatalogRoles,
  server: { readonly name: string; readonly db: Queryable },
  known?: KnownObjects,
  options: { recordsOnly?: boolean; memberships?: boolean } = {},
): Promise<OrphanObject[]> {
  const k = known ?? (await knownObjects(catalog));
  const found = new Map<string, OrphanObject>();
  const add = (o: OrphanObject) => {
    if (!isKnown(k, o.name) && !found.has(`${o.kind}:${o.name}`)) found.set(`${o.kind}:${o.name}`, o);
  };
  if (k.records) {
    const { rows: records } = await catalog.query<{ kind: 'database' | 'role'; name: string; busy: boolean }>(
      `SELECT i.kind, i.name,
              EXISTS (SELECT 1 FROM pg_locks l
                      WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
                        AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                        AND l.classid = $2::bigint::oid
                        AND l.objid = (hashtext(i.tenant_uuid::text)::bigint & 4294967295)::oid) AS busy
       FROM tenantry.tenant_object_intent i
       WHERE i.server = $1 AND NOT EXISTS (SELECT 1 FROM tenantry.tenant t WHERE t.uuid = i.tenant_uuid)
       ORDER BY i.kind, i.name`,
      [server.name, TENANT_OBJECTS_LOCK],
    );
    const { rows: present } = await server.db.query<{ kind: string; name: string }>(
      `SELECT 'database' AS kind, datname::text AS name FROM pg_database WHERE datname = ANY($1::name[])
       UNION ALL SELECT 'role', rolname::text FROM pg_roles WHERE rolname = ANY($1::name[])`,
      [records.map((r) => r.name)],
    );
    const exists = new Set(present.map((p) => `${p.kind}:${p.name}`));
    for (const r of records) {
      if (!exists.has(`${r.kind}:${r.name}`)) continue;
      add({
        server: server.name,
        kind: r.kind,
        name: r.name,
        evidence: 'record',
        tenant: objectTenant(r.name),
        inProgress: r.busy,
      });
    }
  }
  if (options.recordsOnly) return [...found.values()];
  // Login roles in this catalog's tenant groups (shared and schema tenants'), and their members.
  const members = options.memberships === false ? [] : await groupMembers(server.db, roles);
  for (const name of members) {
    if (found.has(`role:${name}`)) continue;
    add({
      server: server.name,
      kind: 'role',
      name,
      evidence: 'membership',
      tenant: objectTenant(name),
      inProgress: false,
    });
  }
  if (server.name === 'main') {
    const { rows: schemas } = await catalog.query<{ name: string }>(
      'SELECT nspname::text AS name FROM pg_namespace WHERE nspname ~ $1 ORDER BY 1',
      [SCHEMA_PATTERN],
    );
    for (const { name } of schemas) {
      add({
        server: 'main',
        kind: 'schema',
        name,
        evidence: 'schema',
        tenant: objectTenant(name),
        inProgress: false,
      });
    }
  }
  return [...found.values()];
}
