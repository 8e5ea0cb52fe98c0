-- runs as: installer (the functions alter tenants' base tables, which the operator owns)
-- tenantry catalog, version 10: per-tenant extra columns and per-tenant indexes (Phoenix).
--
-- Storage: a table's extra columns live in one jsonb column, tenantry_ext, added on first use;
-- the base table does not grow a column per tenant, however many tenants add their own. Each
-- tenant that has extra columns on a table gets its own view of that table in its face schema,
-- projecting them as real, typed columns, with INSTEAD OF triggers that write them back.

CREATE TABLE tenantry.tenant_column (
  tenant_id   integer NOT NULL REFERENCES tenantry.tenant (id) ON DELETE CASCADE,
  schema_name name NOT NULL,
  table_name  name NOT NULL,
  column_name name NOT NULL CHECK (column_name ~ '^[a-z_][a-z0-9_]{0,62}$'),
  type        text NOT NULL,
  PRIMARY KEY (tenant_id, schema_name, table_name, column_name),
  FOREIGN KEY (schema_name, table_name) REFERENCES tenantry.registered_table (schema_name, table_name) ON DELETE CASCADE
);
REVOKE ALL ON tenantry.tenant_column FROM PUBLIC;

CREATE TABLE tenantry.setting (name text PRIMARY KEY, value text NOT NULL);
INSERT INTO tenantry.setting VALUES ('max_tenant_indexes_per_table', '50');
REVOKE ALL ON tenantry.setting FROM PUBLIC;

-- Whether this database holds tenant t's rows: a database tenant's live in its own database,
-- whose data plane has the same functions (src/sql/dataplane/tenant-objects.sql).
CREATE FUNCTION tenantry.holds_tenant_rows(t tenantry.tenant) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT t.isolation IN ('shared', 'schema') $$;

-- The roles that read a data table's tenant column and tenantry_ext through tenants' own views:
-- the application role and every tenant login role.
CREATE FUNCTION tenantry.tenant_view_grantees(t tenantry.tenant) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT format('%I, %I', '{{app_name}}', '{{tenants_name}}') $$;
REVOKE ALL ON FUNCTION tenantry.holds_tenant_rows(tenantry.tenant), tenantry.tenant_view_grantees(tenantry.tenant) FROM PUBLIC;

-- @include tenant-columns.sql
GRANT EXECUTE ON FUNCTION tenantry.add_tenant_column(text, name, text), tenantry.create_tenant_index(text, text[])
  TO {{app}}, {{global}};
