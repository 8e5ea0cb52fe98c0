-- runs as: installer (schema tenants' data schemas belong to the operator who created them)
-- tenantry catalog, version 18: per-tenant runtime services (src/runtime, docs/runtime.md): jobs,
-- the event outbox and hi/lo id counters, stored with each tenant's data. Everything but the last
-- step runs as the owner role.
SET LOCAL ROLE {{owner}};

-- @include runtime-tables.sql

-- Shared tenants' runtime rows: multi-tenant tables in schema tenantry.
SELECT tenantry.runtime_install('tenantry', '', '{{app_name}}', '{{maint_name}}', '{{owner_name}}');

-- @include runtime-catalog.sql

-- @include runtime-claim.sql

-- A schema tenant gets its runtime tables with its data schema (tenant creation sets schema_name).
CREATE FUNCTION tenantry.runtime_schema_tenant() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
  PERFORM tenantry.runtime_install(NEW.schema_name, 'tenantry_', '{{app_name}}', '{{maint_name}}', '{{owner_name}}');
  RETURN NULL;
END
$fn$;
REVOKE ALL ON FUNCTION tenantry.runtime_schema_tenant() FROM PUBLIC;
CREATE TRIGGER tenant_runtime_schema AFTER UPDATE OF schema_name ON tenantry.tenant
  FOR EACH ROW WHEN (NEW.schema_name IS NOT NULL AND NEW.schema_name IS DISTINCT FROM OLD.schema_name)
  EXECUTE FUNCTION tenantry.runtime_schema_tenant();
CREATE TRIGGER tenant_runtime_schema_insert AFTER INSERT ON tenantry.tenant
  FOR EACH ROW WHEN (NEW.schema_name IS NOT NULL)
  EXECUTE FUNCTION tenantry.runtime_schema_tenant();

-- Existing schema tenants, as the installer (their data schemas are the operator's).
RESET ROLE;
SELECT tenantry.runtime_install(schema_name, 'tenantry_', '{{app_name}}', '{{maint_name}}', '{{owner_name}}')
FROM tenantry.tenant WHERE schema_name IS NOT NULL AND to_regnamespace(schema_name) IS NOT NULL;
