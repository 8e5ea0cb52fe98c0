import { findOrphans } from '../tenants/orphans.js';
import type { AuditFacts, Finding, Queryable, TenantFact } from './types.js';

/** `tenantry_t_<uuid without dashes>`: a tenant's role, data schema and database name. */
function objectName(uuid: string): string {
  return `tenantry_t_${uuid.replace(/-/g, '').toLowerCase()}`;
}

interface Existing {
  readonly schemas: ReadonlySet<string>;
  readonly databases: ReadonlySet<string>;
  /** Tenant login roles (by name) and whether they can log in. */
  readonly logins: ReadonlyMap<string, boolean>;
}

async function existing(db: Queryable): Promise<Existing> {
  const schemas = await db.query<{ name: string }>(
    "SELECT nspname AS name FROM pg_namespace WHERE nspname ~ '^tenantry_[ft]_[0-9a-f]{32}$'",
  );
  const databases = await db.query<{ name: string }>(
    "SELECT datname AS name FROM pg_database WHERE datname ~ '^tenantry_t_[0-9a-f]{32}$'",
  );
  const roles = await db.query<{ name: string; login: boolean }>(
    "SELECT rolname AS name, rolcanlogin AS login FROM pg_roles WHERE rolname ~ '^tenantry_t_[0-9a-f]{32}(_[rw])?$'",
  );
  return {
    schemas: new Set(schemas.rows.map((r) => r.name)),
    databases: new Set(databases.rows.map((r) => r.name)),
    logins: new Map(roles.rows.map((r) => [r.name, r.login])),
  };
}

function hazard(
  tenant: TenantFact,
  check: string,
  severity: Finding['severity'],
  message: string,
  fix: string,
): Finding {
  return { check, severity, object: `tenant ${tenant.name} (id ${tenant.id})`, message, fix };
}

/** Where the catalog says a tenant's rows live, against what exists. */
function checkTenant(tenant: TenantFact, facts: AuditFacts, have: Existing): Finding[] {
  const findings: Finding[] = [];
  const own = objectName(tenant.uuid);
  const copied = new Set(facts.dataTables.filter((t) => t.copyOf === tenant.name).map((t) => t.base));
  const missingCopies = (schema: string) =>
    facts.registered
      .filter((r) => r.oid !== null && !copied.has(r.qualified))
      .map((r) => `${schema}.${r.table}`);
  if (tenant.isolation === 'schema') {
    if (tenant.schemaName === null || !have.schemas.has(tenant.schemaName)) {
      findings.push(
        hazard(
          tenant,
          'schema-tenant-without-schema',
          'high',
          `The catalog places ${tenant.name} in its own schema ${tenant.schemaName ?? '(none recorded)'}, which does not exist: its sessions fall through to the shared tables' views, so its rows land next to other tenants'.`,
          `SELECT tenantry.provision_schema('${tenant.schemaName ?? own}', 'tenantry_f_${own.slice('tenantry_t_'.length)}', '${own}');`,
        ),
      );
    } else {
      const missing = missingCopies(tenant.schemaName);
      if (missing.length > 0) {
        findings.push(
          hazard(
            tenant,
            'schema-tenant-missing-table',
            'high',
            `${tenant.name}'s schema lacks its copies of ${missing.join(', ')}: queries of those tables reach the shared tables instead.`,
            `SELECT tenantry.provision_schema('${tenant.schemaName}', 'tenantry_f_${own.slice('tenantry_t_'.length)}', '${own}');`,
          ),
        );
      }
    }
  } else if (tenant.isolation === 'database') {
    if (tenant.databaseName === null) {
      findings.push(
        hazard(
          tenant,
          'database-tenant-without-database',
          'high',
          `The catalog places ${tenant.name} in its own database but records none.`,
          `Re-create the tenant's database (tenantry tenant create on a fresh name), or fix tenantry.tenant.database_name.`,
        ),
      );
    } else if (tenant.server === 'main' && !have.databases.has(tenant.databaseName)) {
      findings.push(
        hazard(
          tenant,
          'database-tenant-without-database',
          'high',
          `The catalog places ${tenant.name} in database ${tenant.databaseName} on server main, which does not exist.`,
          `Restore database ${tenant.databaseName} from a backup, or drop the tenant (tenantry tenant drop ${tenant.name} --force).`,
        ),
      );
    } else if (tenant.server !== 'main') {
      findings.push(
        hazard(
          tenant,
          'database-tenant-unverified',
          'low',
          `${tenant.name}'s database ${tenant.databaseName} is on server ${tenant.server}, which this audit does not connect to.`,
          `Run tenantry audit against that server's databases too.`,
        ),
      );
    }
  } else if (tenant.kind === 'regular' || tenant.kind === 'default') {
    if (have.schemas.has(own) || tenant.schemaName !== null) {
      findings.push(
        hazard(
          tenant,
          'shared-tenant-leftover-schema',
          'medium',
          `${tenant.name} is a shared tenant, but a data schema ${tenant.schemaName ?? own} of its is still there: rows in it are outside every tenant's policy and nobody expects them.`,
          `Move what you need out of it, then DROP SCHEMA ${tenant.schemaName ?? own} CASCADE; UPDATE tenantry.tenant SET schema_name = NULL WHERE id = ${tenant.id};`,
        ),
      );
    }
  }
  if (tenant.isolation !== 'database' && (have.databases.has(own) || tenant.databaseName !== null)) {
    findings.push(
      hazard(
        tenant,
        'leftover-database',
        'medium',
        `${tenant.name} is a ${tenant.isolation} tenant, but a database ${tenant.databaseName ?? own} of its is still there.`,
        `Move what you need out of it, then DROP DATABASE ${tenant.databaseName ?? own}; UPDATE tenantry.tenant SET database_name = NULL WHERE id = ${tenant.id};`,
      ),
    );
  }
  if (tenant.state !== 'active') {
    const open = [...facts.tenantRoles.entries()]
      .filter(([role, r]) => r.tenantId === tenant.id && have.logins.get(role) === true)
      .map(([role]) => role);
    for (const role of open) {
      findings.push(
        hazard(
          tenant,
          'inactive-tenant-can-login',
          'high',
          `${tenant.name} is ${tenant.state}, but its login role ${role} can still log in: the gateway refuses it, PostgreSQL does not.`,
          `ALTER ROLE ${role} NOLOGIN;`,
        ),
      );
    }
  }
  return findings;
}

const ORPHAN_TEXT = {
  schema: (name: string) => ({
    message: `Schema ${name} belongs to no tenant in the catalog (a dropped tenant's leftover): its rows are outside every tenant's policy.`,
    fix: `tenantry tenant repair (or DROP SCHEMA ${name} CASCADE; after saving what you need)`,
  }),
  database: (name: string) => ({
    message: `Database ${name} was made for a database tenant that does not exist (its creation or drop did not finish): its rows belong to nobody and its role may still log in.`,
    fix: `tenantry tenant repair (or DROP DATABASE ${name} WITH (FORCE); after saving what you need)`,
  }),
  role: (name: string) => ({
    message: `Login role ${name} belongs to no tenant in the catalog (a creation or drop that did not finish): it can still log in with tenant rights.`,
    fix: `tenantry tenant repair (or DROP OWNED BY ${name}; DROP ROLE ${name};)`,
  }),
} as const;

/**
 * Leftover schemas, databases and roles of tenants that no longer exist, on the catalog's server.
 * Databases and roles are cluster-wide and may belong to another catalog: only those this
 * catalog recorded (a creation or drop under way) or placed in its tenant groups are reported;
 * objects of a creation a live process is still working on are not.
 */
async function checkOrphans(db: Queryable, facts: AuditFacts): Promise<Finding[]> {
  // (login roles in the tenant groups are the roles check's `tenant-role-orphaned`, high)
  const orphans = await findOrphans(db, facts.roles, { name: 'main', db }, undefined, { memberships: false });
  return orphans
    .filter((o) => !o.inProgress)
    .sort((a, b) => a.kind.localeCompare(b.kind) || a.name.localeCompare(b.name))
    .map((o) => ({
      check: `orphan-${o.kind}`,
      severity: 'medium' as const,
      object: o.name,
      ...ORPHAN_TEXT[o.kind](o.name),
    }));
}

/** Tenants whose placement (shared, schema, database) disagrees with what exists. */
export async function checkPlacement(db: Queryable, facts: AuditFacts): Promise<Finding[]> {
  const have = await existing(db);
  return [...facts.tenants.flatMap((t) => checkTenant(t, facts, have)), ...(await checkOrphans(db, facts))];
}
