import { TENANT_ROLE_PATTERN, dataOids, TENANT_SCHEMA, qualifiedRel } from './facts.js';
import type { AuditFacts, Finding, Queryable } from './types.js';

/** Attributes and memberships of the roles tenant SQL runs as (or inherits from). */
function checkAttributes(facts: AuditFacts): Finding[] {
  const findings: Finding[] = [];
  const { owner, maint, fdw } = facts.roles;
  for (const role of facts.reachable.values()) {
    const attributes = [
      role.superuser ? 'SUPERUSER' : undefined,
      role.bypassRls ? 'BYPASSRLS' : undefined,
      role.createRole ? 'CREATEROLE' : undefined,
    ].filter((a): a is string => a !== undefined);
    if (attributes.length > 0) {
      findings.push({
        check: 'tenant-role-privileged',
        severity: 'high',
        object: role.name,
        message: `${role.name} is reached by tenant SQL (a tenant login role, the application role or one of their groups) and has ${attributes.join(', ')}: ${role.superuser || role.bypassRls ? 'row-level security does not apply to it' : 'it can grant itself tenantry’s other roles'}.`,
        fix: `ALTER ROLE ${role.name} NOSUPERUSER NOBYPASSRLS NOCREATEROLE;`,
      });
    } else if (role.createDb) {
      findings.push({
        check: 'tenant-role-createdb',
        severity: 'low',
        object: role.name,
        message: `${role.name} is reached by tenant SQL and may create databases.`,
        fix: `ALTER ROLE ${role.name} NOCREATEDB;`,
      });
    }
    if (role.name === owner || role.name === maint || role.name === fdw) {
      findings.push({
        check: 'tenant-role-member-of-tenantry',
        severity: role.name === fdw ? 'medium' : 'high',
        object: role.name,
        message: `Tenant SQL reaches tenantry's ${role.name === owner ? 'owner' : role.name === maint ? 'maintenance (BYPASSRLS)' : 'postgres_fdw'} role ${role.name} through role membership.`,
        fix: `Find the membership with \\du and REVOKE ${role.name} FROM <the tenant role or group>;`,
      });
    }
  }
  return findings;
}

/**
 * Relations owned by roles tenant SQL runs as. The owner of a multi-tenant table skips its
 * policy unless it is forced and can switch it off; tenants' own objects in their own schemas
 * are sanctioned.
 */
async function checkOwnership(db: Queryable, facts: AuditFacts): Promise<Finding[]> {
  const { rows } = await db.query<{ object: string; owner: string; data: boolean; catalog: boolean }>(
    `SELECT ${qualifiedRel('c.oid')} AS object, pg_get_userbyid(c.relowner) AS owner,
            c.oid = ANY($2::oid[]) AS data, n.nspname IN ('tenantry', 'tenantry_v') AS catalog
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relowner = ANY($1::oid[]) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
       AND NOT ${TENANT_SCHEMA} AND n.nspname NOT LIKE 'pg\\_%' ORDER BY 1`,
    [[...facts.reachable.keys()], dataOids(facts)],
  );
  return rows.map((row) => ({
    check: 'tenant-role-owns',
    severity: row.data || row.catalog ? ('high' as const) : ('medium' as const),
    object: row.object,
    message: `${row.object} is owned by ${row.owner}, which tenant SQL runs as: ${row.data ? 'the owner can disable or alter the tenant policy of this multi-tenant table' : row.catalog ? 'tenant SQL can change tenantry’s own objects' : 'tenant SQL can alter, drop or re-grant it'}.`,
    fix: `ALTER TABLE ${row.object} OWNER TO <the operator or ${facts.roles.owner}>;`,
  }));
}

/**
 * Login roles with tenant privileges that `tenantry.current_tenant()` does not pin to a tenant:
 * for them the tenant is whatever `tenantry.tenant` they set. Leftover tenant roles (named like
 * one but not registered) are the dangerous case; other roles are trusted code like the
 * application role and should be known.
 */
async function checkUnpinned(db: Queryable, facts: AuditFacts): Promise<Finding[]> {
  const { rows } = await db.query<{ name: string; login: boolean; tenantLike: boolean }>(
    `WITH RECURSIVE member_of(oid) AS (
       SELECT oid FROM pg_roles WHERE rolname IN ($1, $2)
       UNION
       SELECT m.member FROM pg_auth_members m JOIN member_of g ON m.roleid = g.oid
     )
     SELECT r.rolname AS name, r.rolcanlogin AS login, r.rolname ~ $5 AS "tenantLike"
     FROM pg_roles r JOIN member_of USING (oid)
     WHERE r.rolname NOT IN ($1, $2, $3, $4) AND NOT r.rolsuper
       AND r.rolname NOT IN (SELECT role_name FROM tenantry.tenant_role)
       AND NOT pg_has_role(r.oid, (SELECT oid FROM pg_roles WHERE rolname = $6), 'MEMBER')
     ORDER BY 1`,
    [
      facts.roles.tenants,
      facts.roles.global,
      facts.roles.app,
      facts.roles.fdw,
      TENANT_ROLE_PATTERN,
      facts.roles.owner,
    ],
  );
  const findings: Finding[] = [];
  for (const role of rows.filter((r) => r.login)) {
    findings.push({
      check: role.tenantLike ? 'tenant-role-orphaned' : 'role-unpinned',
      severity: role.tenantLike ? 'high' : 'medium',
      object: role.name,
      message: role.tenantLike
        ? `${role.name} looks like a tenant login role but is not registered in tenantry.tenant_role: current_tenant() does not pin it, so it acts for whatever tenant its tenantry.tenant setting names.`
        : `${role.name} holds tenant privileges (member of ${facts.roles.tenants} or ${facts.roles.global}) without being pinned to a tenant: like the application role, it acts for whatever tenantry.tenant it sets. Only trusted code may use it.`,
      fix: role.tenantLike
        ? `DROP OWNED BY ${role.name}; DROP ROLE ${role.name}; -- a leftover of a dropped tenant`
        : `REVOKE ${facts.roles.tenants}, ${facts.roles.global} FROM ${role.name}; -- unless it is trusted code`,
    });
  }
  return findings;
}

/** The roles tenant SQL runs as: attributes, memberships, ownership and unpinned members. */
export async function checkRoles(db: Queryable, facts: AuditFacts): Promise<Finding[]> {
  return [
    ...checkAttributes(facts),
    ...(await checkOwnership(db, facts)),
    ...(await checkUnpinned(db, facts)),
  ];
}
