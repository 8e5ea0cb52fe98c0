-- runs as: installer (replaces a function migration 8 created as the installer)
-- tenantry catalog, version 14: SCRAM-SHA-256 verifiers for the wire-protocol gateway, stored in
-- PostgreSQL's own format and set together with the scrypt hash whenever a password is set.
ALTER TABLE tenantry.app_user ADD COLUMN scram_verifier text;

-- The current tenant's face schema, created on first use. Every login role of the tenant gets
-- USAGE and CREATE on it and the use of what is already in it, and objects the application role
-- creates there later are granted to it by default — so a login role added after the schema
-- (tenants.ensureLoginRole, the gateway's first login) sees what the tenant's sessions created.
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
      EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO %I', schema, r);
      EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO %I', schema, r);
      EXECUTE format('GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA %I TO %I', schema, r);
      EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE {{app}} IN SCHEMA %I GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO %I', schema, r);
      EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE {{app}} IN SCHEMA %I GRANT USAGE, SELECT ON SEQUENCES TO %I', schema, r);
    END IF;
    -- What the tenant's roles create there, the application role (acting for the tenant) may use.
    IF NOT EXISTS (SELECT 1 FROM pg_default_acl a
                   WHERE a.defaclrole = (SELECT oid FROM pg_roles WHERE rolname = r)
                     AND a.defaclnamespace = (SELECT oid FROM pg_namespace WHERE nspname = schema)) THEN
      EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {{app}}', r, schema);
      EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I GRANT USAGE, SELECT ON SEQUENCES TO {{app}}', r, schema);
    END IF;
  END LOOP;
  RETURN schema;
END
$fn$;
