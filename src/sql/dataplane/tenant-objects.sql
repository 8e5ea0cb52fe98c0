-- A database tenant's own objects inside its own database (docs/concepts.md): tenant-specific
-- views (Phoenix's rules), per-tenant columns, tenant indexes, and the guards on code a tenant
-- writes (catalog migrations 008, 010 and 017, whose functions are shared through include/). Run
-- when the database is created and again by every sync (idempotent); the event triggers are in
-- tenant-objects-wall.sql (superuser). Nothing here names the tenant's role inside a function
-- body (a database cloned from a template changes it). Placeholders: {{app}}, {{role}}
-- (identifiers), {{app_name}}, {{owner_name}} (bare names, for literals).

-- The columns of the catalog's tenant row the shared functions read: a database tenant is a
-- regular tenant whose rows live here.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_attribute
                 WHERE attrelid = 'tenantry.tenant'::regclass AND attname = 'isolation' AND NOT attisdropped) THEN
    ALTER TABLE tenantry.tenant
      ADD COLUMN IF NOT EXISTS kind text NOT NULL DEFAULT 'regular',
      ADD COLUMN IF NOT EXISTS isolation text NOT NULL DEFAULT 'database',
      ADD COLUMN IF NOT EXISTS schema_name name;
  END IF;
END
$$;

-- The catalog's registered tables, as far as this database needs them (every sync copies them).
CREATE TABLE IF NOT EXISTS tenantry.registered_table (
  schema_name   name NOT NULL,
  table_name    name NOT NULL,
  kind          text NOT NULL CHECK (kind IN ('multi_tenant', 'shared')),
  tenant_column name,
  PRIMARY KEY (schema_name, table_name)
);

-- The tenant's extra columns (as in the catalog: values in the data table's tenantry_ext).
CREATE TABLE IF NOT EXISTS tenantry.tenant_column (
  tenant_id   integer NOT NULL REFERENCES tenantry.tenant (id) ON DELETE CASCADE,
  schema_name name NOT NULL,
  table_name  name NOT NULL,
  column_name name NOT NULL CHECK (column_name ~ '^[a-z_][a-z0-9_]{0,62}$'),
  type        text NOT NULL,
  PRIMARY KEY (tenant_id, schema_name, table_name, column_name),
  FOREIGN KEY (schema_name, table_name) REFERENCES tenantry.registered_table (schema_name, table_name) ON DELETE CASCADE
);

-- max_tenant_indexes_per_table, copied from the catalog by every sync.
CREATE TABLE IF NOT EXISTS tenantry.setting (name text PRIMARY KEY, value text NOT NULL);
INSERT INTO tenantry.setting VALUES ('max_tenant_indexes_per_table', '50') ON CONFLICT DO NOTHING;

-- Which data plane this database has (a hash of its SQL), written by creation and every sync.
CREATE TABLE IF NOT EXISTS tenantry.data_plane (
  only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
  version  text NOT NULL
);
REVOKE ALL ON tenantry.registered_table, tenantry.tenant_column, tenantry.setting, tenantry.data_plane FROM PUBLIC;

-- The tenant's rows live here (the catalog's version answers for shared and schema tenants).
CREATE OR REPLACE FUNCTION tenantry.holds_tenant_rows(t tenantry.tenant) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT t.isolation = 'database' $$;

-- The roles that read a data table's tenant column and tenantry_ext through the tenant's own
-- view: the application role and the tenant's login roles.
CREATE OR REPLACE FUNCTION tenantry.tenant_view_grantees(t tenantry.tenant) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT string_agg(quote_ident(g.role_name), ', ' ORDER BY g.role_name)
  FROM (SELECT '{{app_name}}'::name AS role_name
        UNION SELECT r.role_name FROM tenantry.tenant_role r JOIN pg_roles p ON p.rolname = r.role_name
              WHERE r.tenant_id = t.id) g
$$;

-- The tenant's face schema (created with its database; recreated if missing). As in the catalog
-- (migration 14), each login role of the tenant gets USAGE and CREATE on it and the use of what
-- the application role creates there, and the application role the use of what they create.
-- Checked against pg_default_acl, so that roles replaced later (a template's clone) are covered.
CREATE OR REPLACE FUNCTION tenantry.ensure_own_schema() RETURNS name
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  t      tenantry.tenant;
  schema name;
  r      name;
BEGIN
  SELECT * INTO t FROM tenantry.tenant WHERE id = tenantry.current_tenant();
  IF t.id IS NULL OR t.kind NOT IN ('regular', 'default') THEN
    RETURN NULL;
  END IF;
  schema := 'tenantry_f_' || replace(t.uuid::text, '-', '');
  IF to_regnamespace(schema::text) IS NULL THEN
    EXECUTE format('CREATE SCHEMA %I', schema);
    EXECUTE format('REVOKE ALL ON SCHEMA %I FROM PUBLIC', schema);
    EXECUTE format('GRANT USAGE, CREATE ON SCHEMA %I TO {{app}}', schema);
  END IF;
  FOR r IN SELECT tr.role_name FROM tenantry.tenant_role tr JOIN pg_roles p ON p.rolname = tr.role_name
           WHERE tr.tenant_id = t.id LOOP
    IF NOT has_schema_privilege(r, schema, 'CREATE') THEN
      EXECUTE format('GRANT USAGE, CREATE ON SCHEMA %I TO %I', schema, r);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_default_acl a CROSS JOIN LATERAL aclexplode(a.defaclacl) x
                   WHERE a.defaclrole = '{{app_name}}'::regrole AND a.defaclnamespace = schema::regnamespace
                     AND x.grantee = r::regrole) THEN
      EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO %I', schema, r);
      EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO %I', schema, r);
      EXECUTE format('GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA %I TO %I', schema, r);
      EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE {{app}} IN SCHEMA %I GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO %I', schema, r);
      EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE {{app}} IN SCHEMA %I GRANT USAGE, SELECT ON SEQUENCES TO %I', schema, r);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_default_acl a
                   WHERE a.defaclrole = r::regrole AND a.defaclnamespace = schema::regnamespace) THEN
      EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO {{app}}', schema);
      EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO {{app}}', schema);
      EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {{app}}', r, schema);
      EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I GRANT USAGE, SELECT ON SEQUENCES TO {{app}}', r, schema);
    END IF;
  END LOOP;
  RETURN schema;
END
$fn$;

-- @include tenant-views.sql

-- @include tenant-columns.sql

-- @include tenant-code.sql

-- A sync re-grants every data table's column privileges (copying a table does), which takes the
-- tenant column away from the roles that read it through the tenant's own views: give it back.
CREATE OR REPLACE FUNCTION tenantry.regrant_tenant_columns() RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  c record;
  t tenantry.tenant;
BEGIN
  FOR c IN SELECT DISTINCT x.tenant_id, format('%I.%I', r.schema_name, r.table_name) AS data, r.tenant_column
           FROM tenantry.tenant_column x
           JOIN tenantry.registered_table r ON r.schema_name = x.schema_name AND r.table_name = x.table_name
           WHERE to_regclass(format('%I.%I', r.schema_name, r.table_name)) IS NOT NULL LOOP
    SELECT * INTO t FROM tenantry.tenant WHERE id = c.tenant_id;
    EXECUTE format('GRANT SELECT (%I, tenantry_ext), INSERT (tenantry_ext), UPDATE (tenantry_ext) ON %s TO %s',
                   c.tenant_column, c.data, tenantry.tenant_view_grantees(t));
  END LOOP;
END
$fn$;

REVOKE ALL ON FUNCTION tenantry.holds_tenant_rows(tenantry.tenant), tenantry.tenant_view_grantees(tenantry.tenant),
  tenantry.ensure_own_schema(), tenantry.regrant_tenant_columns() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenantry.ensure_own_schema(), tenantry.add_tenant_column(text, name, text),
  tenantry.create_tenant_index(text, text[]) TO {{app}}, {{role}};
