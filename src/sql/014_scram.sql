-- runs as: installer (replaces a function migration 8 created as the installer)
-- tenantry catalog, version 14: SCRAM-SHA-256 verifiers for the wire-protocol gateway, stored in
-- PostgreSQL's own format and set together with the scrypt hash whenever a password is set.
ALTER TABLE tenantry.app_user ADD COLUMN scram_verifier text;

-- The current tenant's face schema, created on first use; USAGE and CREATE are (re)granted to
-- every login role of the tenant each time, so roles added after the schema (a login role
-- created later, per-permission roles) can use it too.
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
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO {{maint}}', schema);
  END IF;
  FOR r IN SELECT role_name FROM tenantry.tenant_role WHERE tenant_id = t.id LOOP
    IF NOT has_schema_privilege(r, schema, 'CREATE') THEN
      EXECUTE format('GRANT USAGE, CREATE ON SCHEMA %I TO %I', schema, r);
    END IF;
  END LOOP;
  RETURN schema;
END
$fn$;
