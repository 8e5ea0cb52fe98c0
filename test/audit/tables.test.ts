import { beforeAll, describe, it } from 'vitest';
import { auditTemplate, plantAndFix, sql, type AuditTemplate } from './helpers.js';

let t: AuditTemplate;

beforeAll(async () => {
  t = await auditTemplate('audit_tables');
});

// Each hazard is planted in its own copy of a clean demo database, found, fixed, and gone.
describe.concurrent('hazards of multi-tenant tables', () => {
  it('row-level security not forced (the owner bypasses the policy)', () =>
    plantAndFix(t, {
      label: 'noforce',
      check: 'rls-not-forced',
      severity: 'high',
      object: /^public\.customer$/,
      plant: (url) => sql(url, 'ALTER TABLE public.customer NO FORCE ROW LEVEL SECURITY'),
      fix: (url) => sql(url, 'ALTER TABLE public.customer FORCE ROW LEVEL SECURITY'),
    }));

  it('row-level security disabled, also on a schema tenant’s copy', async (ctx) => {
    await plantAndFix(t, {
      label: 'norls',
      check: 'rls-disabled',
      severity: 'high',
      object: /^public\."order"$/,
      plant: (url) => sql(url, 'ALTER TABLE public."order" DISABLE ROW LEVEL SECURITY'),
      fix: (url) => sql(url, 'ALTER TABLE public."order" ENABLE ROW LEVEL SECURITY'),
    });
    if (!t.tenants.Acme) return ctx.skip('this build could not provision a schema tenant');
    const copy = `${t.tenants.Acme.schema!}.customer`;
    await plantAndFix(t, {
      label: 'norls_copy',
      check: 'rls-disabled',
      severity: 'high',
      object: new RegExp(`^${t.tenants.Acme.schema!}\\.customer$`),
      plant: (url) => sql(url, `ALTER TABLE ${copy} DISABLE ROW LEVEL SECURITY`),
      fix: (url) => sql(url, `ALTER TABLE ${copy} ENABLE ROW LEVEL SECURITY`),
    });
  });

  it('tenantry’s policy dropped, altered, or widened by another permissive policy', async () => {
    await plantAndFix(t, {
      label: 'nopolicy',
      check: 'policy-missing',
      severity: 'high',
      object: /^public\.users$/,
      plant: (url) => sql(url, 'DROP POLICY tenantry_isolation ON public.users'),
      fix: (url) => sql(url, "SELECT tenantry.multi_tenant('public.users')"),
    });
    await plantAndFix(t, {
      label: 'altered',
      check: 'policy-altered',
      severity: 'high',
      object: /^public\.customer$/,
      plant: (url) => sql(url, 'ALTER POLICY tenantry_isolation ON public.customer USING (true)'),
      fix: (url) => sql(url, "SELECT tenantry.add_allocation_policy('public.customer')"),
    });
    await plantAndFix(t, {
      label: 'permissive',
      check: 'policy-extra-permissive',
      severity: 'high',
      object: /^public\.customer$/,
      plant: (url) => sql(url, 'CREATE POLICY peek ON public.customer USING (cust_num < 2)'),
      fix: (url) => sql(url, 'DROP POLICY peek ON public.customer'),
    });
  });

  it('a unique index without the tenant column (violations reveal other tenants’ keys)', () =>
    plantAndFix(t, {
      label: 'unique',
      check: 'unique-without-tenant',
      severity: 'high',
      object: /^public\.users_name$/,
      plant: (url) => sql(url, 'CREATE UNIQUE INDEX users_name ON public.users (name)'),
      fix: (url) => sql(url, 'DROP INDEX public.users_name'),
    }));

  it('a foreign key from an undeclared table into a multi-tenant table (probes keys)', () =>
    plantAndFix(t, {
      label: 'fk',
      check: 'foreign-key-without-tenant',
      severity: 'high',
      object: /^note_customer on public\.note$/,
      plant: (url) =>
        sql(
          url,
          `CREATE TABLE public.note (tenant_id integer, cust_num bigint, body text,
             CONSTRAINT note_customer FOREIGN KEY (tenant_id, cust_num) REFERENCES public.customer)`,
        ),
      fix: (url) => sql(url, 'DROP TABLE public.note'),
    }));

  it('an index that does not lead with the tenant column (EXPLAIN ANALYZE counts other tenants)', () =>
    plantAndFix(t, {
      label: 'index',
      check: 'index-not-tenant-led',
      severity: 'medium',
      object: /^public\.customer_name$/,
      plant: (url) => sql(url, 'CREATE INDEX customer_name ON public.customer (name)'),
      fix: (url) => sql(url, 'DROP INDEX public.customer_name'),
    }));

  it('TRUNCATE granted to the tenants’ group, SELECT granted to PUBLIC', async () => {
    await plantAndFix(t, {
      label: 'truncate',
      check: 'truncate-grant',
      severity: 'high',
      object: /^public\.customer$/,
      plant: (url) => sql(url, `GRANT TRUNCATE ON public.customer TO ${t.roles.tenants}`),
      fix: (url) => sql(url, `REVOKE TRUNCATE ON public.customer FROM ${t.roles.tenants}`),
    });
    await plantAndFix(t, {
      label: 'public',
      check: 'table-grant',
      severity: 'high',
      object: /^public\."order"$/,
      plant: (url) => sql(url, 'GRANT SELECT ON public."order" TO PUBLIC'),
      fix: (url) => sql(url, 'REVOKE SELECT ON public."order" FROM PUBLIC'),
    });
  });

  it('a partition of a multi-tenant table granted to tenant SQL (read directly, no policy)', () =>
    plantAndFix(t, {
      label: 'partition',
      check: 'partition-grant',
      severity: 'high',
      object: /^public\.event_1$/,
      plant: (url) =>
        sql(
          url,
          `CREATE TABLE public.event (tenant_id integer NOT NULL, id integer NOT NULL, what text,
             PRIMARY KEY (tenant_id, id)) PARTITION BY HASH (tenant_id);
           CREATE TABLE public.event_1 PARTITION OF public.event FOR VALUES WITH (MODULUS 1, REMAINDER 0);
           SELECT tenantry.multi_tenant('public.event');
           GRANT SELECT ON public.event_1 TO ${t.roles.app}`,
        ),
      fix: (url) => sql(url, `REVOKE SELECT ON public.event_1 FROM ${t.roles.app}`),
    }));

  it('a per-tenant table that was never declared multi-tenant', () =>
    plantAndFix(t, {
      label: 'undeclared',
      check: 'tenant-table-undeclared',
      severity: 'high',
      object: /^public\.invoice$/,
      plant: (url) =>
        sql(
          url,
          `CREATE TABLE public.invoice (tenant_id integer NOT NULL REFERENCES tenantry.tenant (id), id integer NOT NULL,
             amount numeric, PRIMARY KEY (tenant_id, id));
           GRANT SELECT ON public.invoice TO ${t.roles.app}`,
        ),
      fix: (url) => sql(url, "SELECT tenantry.multi_tenant('public.invoice')"),
    }));

  it('the base tables’ schema opened to PUBLIC; the read users’ write guard disabled', async () => {
    await plantAndFix(t, {
      label: 'schema',
      check: 'base-schema-public',
      severity: 'medium',
      object: /^public$/,
      plant: (url) => sql(url, 'GRANT USAGE ON SCHEMA public TO PUBLIC'),
      fix: (url) => sql(url, 'REVOKE USAGE ON SCHEMA public FROM PUBLIC'),
    });
    await plantAndFix(t, {
      label: 'guard',
      check: 'write-guard-missing',
      severity: 'medium',
      object: /^public\.users$/,
      plant: (url) => sql(url, 'ALTER TABLE public.users DISABLE TRIGGER tenantry_guard_write'),
      fix: (url) => sql(url, "SELECT tenantry.guard_table('public.users')"),
    });
  });

  it('sequences shared across tenants: a serial column; tenantry’s shared sequence off a grouped table', async () => {
    await plantAndFix(t, {
      label: 'serial',
      check: 'sequence-shared',
      severity: 'medium',
      object: /^public\.users\.seq$/,
      plant: (url) => sql(url, 'ALTER TABLE public.users ADD COLUMN seq bigserial'),
      fix: (url) => sql(url, 'ALTER TABLE public.users DROP COLUMN seq'),
    });
    const shared = `INSERT INTO tenantry.sequence (name, kind) VALUES ('ticket', 'shared');
                    CREATE SEQUENCE tenantry.seq_ticket; ALTER SEQUENCE tenantry.seq_ticket OWNER TO ${t.roles.owner};`;
    await plantAndFix(t, {
      label: 'shared_seq',
      check: 'sequence-shared',
      severity: 'low',
      object: /^public\.users\.ticket$/,
      plant: (url) =>
        sql(
          url,
          `${shared} ALTER TABLE public.users ADD COLUMN ticket bigint DEFAULT tenantry.next('ticket')`,
        ),
      // sanctioned: the grouped table item may share one
      fix: (url) =>
        sql(
          url,
          `ALTER TABLE public.users DROP COLUMN ticket;
           ALTER TABLE public.item ADD COLUMN ticket bigint DEFAULT tenantry.next('ticket')`,
        ),
    });
  });

  it('a registered table that no longer exists', () =>
    plantAndFix(t, {
      label: 'gone',
      check: 'registered-table-missing',
      severity: 'medium',
      object: /^public\.gone$/,
      plant: (url) =>
        sql(
          url,
          `CREATE TABLE public.gone (tenant_id integer NOT NULL, id integer NOT NULL, PRIMARY KEY (tenant_id, id));
           SELECT tenantry.multi_tenant('public.gone');
           DROP TABLE public.gone CASCADE`,
        ),
      fix: (url) => sql(url, "DELETE FROM tenantry.registered_table WHERE table_name = 'gone'"),
    }));
});
