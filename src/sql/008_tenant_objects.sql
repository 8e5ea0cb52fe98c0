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

-- Before a tenant session's CREATE: make sure its face schema exists to create in.
CREATE FUNCTION tenantry.on_tenant_ddl_start() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
  IF tenantry.current_tenant() IS NOT NULL THEN
    PERFORM tenantry.ensure_own_schema();
  END IF;
END
$fn$;

-- After CREATE VIEW: Phoenix's rules for tenant-specific views. A view in a tenant's face
-- schema must be created by that tenant's session and read only multi-tenant tables (through
-- their tenant-facing views) or the tenant's own objects; it is made security_invoker so that
-- the tenant's privileges and row-level security apply to it.
CREATE FUNCTION tenantry.on_tenant_ddl_end() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  cmd    record;
  owner  uuid;
  me     uuid;
  bad    text;
BEGIN
  -- tenantry's own provisioning (as the operator, a superuser) creates the face views itself.
  IF current_setting('tenantry.provisioning', true) = 'on'
     AND (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    RETURN;
  END IF;
  FOR cmd IN SELECT * FROM pg_event_trigger_ddl_commands() WHERE object_type = 'view' LOOP
    CONTINUE WHEN cmd.schema_name NOT LIKE 'tenantry\_f\_%';
    SELECT t.uuid INTO me FROM tenantry.tenant t WHERE t.id = tenantry.current_tenant();
    owner := (SELECT t.uuid FROM tenantry.tenant t
              WHERE 'tenantry_f_' || replace(t.uuid::text, '-', '') = cmd.schema_name);
    IF me IS NULL OR me IS DISTINCT FROM owner THEN
      RAISE EXCEPTION 'TENANTRY_ERR_TENANT_VIEW: Only the tenant itself can create views in its own schema; run the statement in its session (withTenant, the gateway or tenantry sql --tenant).'
        USING ERRCODE = '42501';
    END IF;
    SELECT string_agg(DISTINCT format('%I.%I', n.nspname, c.relname), ', ') INTO bad
    FROM pg_rewrite rw
    JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = rw.oid AND d.refclassid = 'pg_class'::regclass
    JOIN pg_class c ON c.oid = d.refobjid AND c.oid <> cmd.objid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE rw.ev_class = cmd.objid
      AND n.nspname <> cmd.schema_name
      AND NOT (n.nspname = 'tenantry_v' AND EXISTS (SELECT 1 FROM tenantry.registered_table r
                                                   WHERE r.kind = 'multi_tenant' AND r.table_name = c.relname))
      AND NOT (n.nspname = cmd.schema_name);
    IF bad IS NOT NULL THEN
      RAISE EXCEPTION 'TENANTRY_ERR_TENANT_VIEW: A tenant view may read only multi-tenant tables and the tenant''s own objects, not %.', bad
        USING ERRCODE = '42809';
    END IF;
    EXECUTE format('ALTER VIEW %s SET (security_invoker = true)', cmd.object_identity);
  END LOOP;
END
$fn$;

CREATE EVENT TRIGGER tenantry_tenant_ddl_start ON ddl_command_start
  WHEN TAG IN ('CREATE VIEW', 'CREATE TABLE', 'CREATE TABLE AS', 'CREATE INDEX', 'CREATE FUNCTION', 'CREATE SEQUENCE')
  EXECUTE FUNCTION tenantry.on_tenant_ddl_start();
CREATE EVENT TRIGGER tenantry_tenant_ddl_end ON ddl_command_end
  WHEN TAG IN ('CREATE VIEW')
  EXECUTE FUNCTION tenantry.on_tenant_ddl_end();

REVOKE ALL ON FUNCTION tenantry.on_tenant_ddl_start(), tenantry.on_tenant_ddl_end() FROM PUBLIC;
