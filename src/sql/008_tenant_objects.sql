-- runs as: installer (event triggers need a superuser)
-- tenantry catalog, version 8: tenants' own objects (Phoenix's tenant-specific views). A
-- tenant creates them in its face schema (first on its search_path), which a shared tenant gets
-- only when it first creates an object.

-- The current tenant's face schema, created on first use with USAGE and CREATE for the
-- tenant's own login role(s) and the application role. NULL without a tenant.
CREATE FUNCTION tenantry.ensure_own_schema() RETURNS name
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
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO {{maint}}', schema);
    FOR r IN SELECT role_name FROM tenantry.tenant_role WHERE tenant_id = t.id LOOP
      EXECUTE format('GRANT USAGE, CREATE ON SCHEMA %I TO %I', schema, r);
    END LOOP;
  END IF;
  RETURN schema;
END
$fn$;
REVOKE ALL ON FUNCTION tenantry.ensure_own_schema() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenantry.ensure_own_schema() TO {{app}}, {{global}};

-- @include tenant-views.sql

-- @include tenant-views-triggers.sql
