import { randomBytes } from 'node:crypto';
import { beforeAll, describe, it } from 'vitest';
import { auditTemplate, plantAndFix, sql, type AuditTemplate } from './helpers.js';

let t: AuditTemplate;
const hex = () => randomBytes(16).toString('hex');
const face = (uuid: string) => `tenantry_f_${uuid.replace(/-/g, '')}`;
const data = (uuid: string) => `tenantry_t_${uuid.replace(/-/g, '')}`;

beforeAll(async () => {
  t = await auditTemplate('audit_code');
});

// Each hazard is planted in its own copy of a clean demo database, found, fixed, and gone.
describe.concurrent('views and code over multi-tenant tables (database-local hazards)', () => {
  it('a view of the operator (a superuser) over a multi-tenant table, not security_invoker', () =>
    plantAndFix(t, {
      label: 'view',
      check: 'view-not-invoker',
      severity: 'high',
      object: /^public\.all_customers$/,
      plant: (url) => sql(url, 'CREATE VIEW public.all_customers AS SELECT name FROM public.customer'),
      fix: (url) => sql(url, 'ALTER VIEW public.all_customers SET (security_invoker = true)'),
    }));

  it('a materialized view of every tenant’s rows; a tenant-facing view that lost security_invoker', async () => {
    await plantAndFix(t, {
      label: 'matview',
      check: 'matview-over-multi-tenant',
      severity: 'high',
      object: /^public\.customer_count$/,
      plant: (url) =>
        sql(url, 'CREATE MATERIALIZED VIEW public.customer_count AS SELECT count(*) FROM public.customer'),
      fix: (url) => sql(url, 'DROP MATERIALIZED VIEW public.customer_count'),
    });
    await plantAndFix(t, {
      label: 'facing',
      check: 'facing-view-not-invoker',
      severity: 'high',
      object: /^tenantry_v\.customer$/,
      plant: (url) => sql(url, 'ALTER VIEW tenantry_v.customer SET (security_invoker = false)'),
      fix: (url) => sql(url, 'ALTER VIEW tenantry_v.customer SET (security_invoker = true)'),
    });
  });

  it('a SECURITY DEFINER function of a superuser reading a multi-tenant table', () =>
    plantAndFix(t, {
      label: 'definer',
      check: 'definer-reads-multi-tenant',
      severity: 'high',
      object: /^public\.count_orders\(\)$/,
      plant: (url) =>
        sql(
          url,
          'CREATE FUNCTION public.count_orders() RETURNS bigint LANGUAGE sql SECURITY DEFINER AS $$ SELECT count(*) FROM public."order" $$',
        ),
      fix: (url) => sql(url, 'ALTER FUNCTION public.count_orders() SECURITY INVOKER'),
    }));

  it('tenants’ objects calling set_config or running SQL text (traps for trusted code)', async () => {
    const schema = face(t.tenants.HomeDepot!.uuid);
    const lowes = t.tenants.Lowes!.id;
    // left by an older tenantry (tenantry now refuses them), or by the operator
    await plantAndFix(t, {
      label: 'trap',
      check: 'tenant-object-trap',
      severity: 'high',
      object: /\.trap\.x \(default\)$/,
      plant: (url) =>
        sql(
          url,
          `CREATE TABLE ${schema}.trap (id integer, x text DEFAULT set_config('tenantry.tenant', '${lowes}', true))`,
        ),
      fix: (url) => sql(url, `DROP TABLE ${schema}.trap`),
    });
    await plantAndFix(t, {
      label: 'trap_xml',
      check: 'tenant-object-trap',
      severity: 'high',
      object: /\.trap_xml\.x \(default\)$/,
      plant: (url) =>
        sql(
          url,
          `CREATE TABLE ${schema}.trap_xml (x text DEFAULT query_to_xml('select 1', false, false, '')::text)`,
        ),
      fix: (url) => sql(url, `DROP TABLE ${schema}.trap_xml`),
    });
  });

  it('a routine left in a tenant’s schema; a tenantry function opened to PUBLIC', async () => {
    const schema = face(t.tenants.HomeDepot!.uuid);
    await plantAndFix(t, {
      label: 'routine',
      check: 'tenant-routine',
      severity: 'medium',
      object: /\.helper\(\)$/,
      plant: (url) =>
        sql(url, `CREATE FUNCTION ${schema}.helper() RETURNS integer LANGUAGE sql AS $$ SELECT 1 $$`),
      fix: (url) => sql(url, `DROP FUNCTION ${schema}.helper()`),
    });
    const fn = 'tenantry.scan_tenants(integer[], text[], boolean[], text, boolean, text)';
    await plantAndFix(t, {
      label: 'fnpublic',
      check: 'tenantry-function-public',
      severity: 'medium',
      object: /^tenantry\.scan_tenants\(/,
      plant: (url) => sql(url, `GRANT EXECUTE ON FUNCTION ${fn} TO PUBLIC`),
      fix: (url) => sql(url, `REVOKE EXECUTE ON FUNCTION ${fn} FROM PUBLIC`),
    });
  });

  it('an event trigger of tenantry disabled; the first wall (advisory locks) reopened', async () => {
    await plantAndFix(t, {
      label: 'evt',
      check: 'event-trigger-off',
      severity: 'high',
      object: /tenantry_tenant_routines$/,
      plant: (url) => sql(url, 'ALTER EVENT TRIGGER tenantry_tenant_routines DISABLE'),
      fix: (url) => sql(url, 'ALTER EVENT TRIGGER tenantry_tenant_routines ENABLE'),
    });
    await plantAndFix(t, {
      label: 'wall',
      check: 'first-wall-down',
      severity: 'medium',
      object: /pg_advisory_lock\(bigint\)$/,
      plant: (url) => sql(url, 'GRANT EXECUTE ON FUNCTION pg_catalog.pg_advisory_lock(bigint) TO PUBLIC'),
      fix: (url) => sql(url, 'REVOKE EXECUTE ON FUNCTION pg_catalog.pg_advisory_lock(bigint) FROM PUBLIC'),
    });
  });

  it('tenantry’s catalog table of credentials granted to the tenants’ group', () =>
    plantAndFix(t, {
      label: 'catalog',
      check: 'catalog-grant',
      severity: 'high',
      object: /^tenantry\.credential$/,
      plant: (url) => sql(url, `GRANT SELECT ON tenantry.credential TO ${t.roles.tenants}`),
      fix: (url) => sql(url, `REVOKE SELECT ON tenantry.credential FROM ${t.roles.tenants}`),
    }));

  it('placement: a schema or database tenant without its schema or database; leftovers of tenants', async () => {
    const lowes = t.tenants.Lowes!;
    const revert =
      "UPDATE tenantry.tenant SET isolation = 'shared', schema_name = NULL, database_name = NULL WHERE name = 'Lowes'";
    await plantAndFix(t, {
      label: 'noschema',
      check: 'schema-tenant-without-schema',
      severity: 'high',
      object: /^tenant Lowes/,
      // (its schema existed once: tenantry installs the runtime tables there when it is recorded)
      plant: (url) =>
        sql(
          url,
          `CREATE SCHEMA ${data(lowes.uuid)};
           UPDATE tenantry.tenant SET isolation = 'schema', schema_name = '${data(lowes.uuid)}' WHERE name = 'Lowes';
           DROP SCHEMA ${data(lowes.uuid)} CASCADE`,
        ),
      fix: (url) => sql(url, revert),
    });
    await plantAndFix(t, {
      label: 'nodb',
      check: 'database-tenant-without-database',
      severity: 'high',
      object: /^tenant Lowes/,
      plant: (url) =>
        sql(
          url,
          `UPDATE tenantry.tenant SET isolation = 'database', database_name = '${data(lowes.uuid)}' WHERE name = 'Lowes'`,
        ),
      fix: (url) => sql(url, revert),
    });
    await plantAndFix(t, {
      label: 'leftover',
      check: 'shared-tenant-leftover-schema',
      severity: 'medium',
      object: /^tenant HomeDepot/,
      plant: (url) => sql(url, `CREATE SCHEMA ${data(t.tenants.HomeDepot!.uuid)}`),
      fix: (url) => sql(url, `DROP SCHEMA ${data(t.tenants.HomeDepot!.uuid)}`),
    });
    const orphan = `tenantry_f_${hex()}`;
    await plantAndFix(t, {
      label: 'orphan',
      check: 'orphan-schema',
      severity: 'medium',
      object: new RegExp(`^${orphan}$`),
      plant: (url) => sql(url, `CREATE SCHEMA ${orphan}`),
      fix: (url) => sql(url, `DROP SCHEMA ${orphan}`),
    });
  });
});

// Roles are cluster-wide (shared by the template's copies): these run one at a time.
describe('roles tenant SQL runs as', () => {
  it('the application role with BYPASSRLS; owning a multi-tenant table; a member of the maintenance role', async () => {
    const { app, maint } = t.roles;
    await plantAndFix(t, {
      label: 'bypass',
      check: 'tenant-role-privileged',
      severity: 'high',
      object: new RegExp(`^${app}$`),
      plant: (url) => sql(url, `ALTER ROLE ${app} BYPASSRLS`),
      fix: (url) => sql(url, `ALTER ROLE ${app} NOBYPASSRLS`),
    });
    await plantAndFix(t, {
      label: 'owns',
      check: 'tenant-role-owns',
      severity: 'high',
      object: /^public\.item$/,
      plant: (url) => sql(url, `ALTER TABLE public.item OWNER TO ${app}`),
      fix: (url) => sql(url, 'ALTER TABLE public.item OWNER TO CURRENT_USER'),
    });
    const home = t.tenants.HomeDepot!.role;
    await plantAndFix(t, {
      label: 'maint',
      check: 'tenant-role-member-of-tenantry',
      severity: 'high',
      object: new RegExp(`^${maint}$`),
      plant: (url) => sql(url, `GRANT ${maint} TO ${home}`),
      fix: (url) => sql(url, `REVOKE ${maint} FROM ${home}`),
    });
  });

  it('login roles in the tenants’ group that no tenant pins: a leftover tenant role, another role', async () => {
    const leftover = `tenantry_t_${hex()}`;
    const other = `analytics_${hex().slice(0, 12)}`;
    for (const [role, check, severity] of [
      [leftover, 'tenant-role-orphaned', 'high'],
      [other, 'role-unpinned', 'medium'],
    ] as const) {
      await plantAndFix(t, {
        label: check.slice(0, 12),
        check,
        severity,
        object: new RegExp(`^${role}$`),
        plant: (url) => sql(url, `CREATE ROLE ${role} LOGIN; GRANT ${t.roles.tenants} TO ${role}`),
        fix: (url) => sql(url, `DROP ROLE ${role}`),
      });
    }
  });

  it('a tenantry function handed to another owner', async () => {
    const someone = `audit_someone_${hex().slice(0, 12)}`;
    await plantAndFix(t, {
      label: 'fnowner',
      check: 'tenantry-function-owner',
      severity: 'high',
      object: /^tenantry\.tenant_name\(\)$/,
      plant: (url) =>
        sql(url, `CREATE ROLE ${someone}; ALTER FUNCTION tenantry.tenant_name() OWNER TO ${someone}`),
      fix: (url) =>
        sql(url, `ALTER FUNCTION tenantry.tenant_name() OWNER TO ${t.roles.owner}; DROP ROLE ${someone}`),
    });
  });

  it('a disabled tenant whose login role can still log in', () =>
    plantAndFix(t, {
      label: 'disabled',
      check: 'inactive-tenant-can-login',
      severity: 'high',
      object: /^tenant HomeDepot/,
      plant: (url) => sql(url, "UPDATE tenantry.tenant SET state = 'disabled' WHERE name = 'HomeDepot'"),
      fix: (url) => sql(url, "UPDATE tenantry.tenant SET state = 'active' WHERE name = 'HomeDepot'"),
    }));
});
