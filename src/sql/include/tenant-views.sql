-- Shared by the catalog (migration 008) and every database tenant's data plane: Phoenix's rules
-- for tenant-specific views, which a tenant creates in its face schema (first on its
-- search_path). tenantry.ensure_own_schema() is each side's own: the catalog creates a shared
-- tenant's face schema on first use, a database tenant's exists with its database.

-- Before a tenant session's CREATE: make sure its face schema exists to create in.
CREATE OR REPLACE FUNCTION tenantry.on_tenant_ddl_start() RETURNS event_trigger
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
CREATE OR REPLACE FUNCTION tenantry.on_tenant_ddl_end() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  cmd    record;
  owner  uuid;
  me     uuid;
  bad    text;
BEGIN
  FOR cmd IN SELECT * FROM pg_event_trigger_ddl_commands() WHERE object_type = 'view' LOOP
    CONTINUE WHEN cmd.schema_name NOT LIKE 'tenantry\_f\_%';
    -- tenantry's own provisioning (tenantry.provisioning on) creates the face views itself: in
    -- the operator's (superuser) session, or inside its SECURITY DEFINER functions, whose views
    -- belong to a superuser or tenantry's owner. The setting alone could be forged by a tenant's
    -- SQL; its session user and the view's owner cannot.
    CONTINUE WHEN current_setting('tenantry.provisioning', true) = 'on'
              AND ((SELECT rolsuper FROM pg_roles WHERE rolname = session_user)
                   OR EXISTS (SELECT 1 FROM pg_class c JOIN pg_roles o ON o.oid = c.relowner
                              WHERE c.oid = cmd.objid AND (o.rolsuper OR o.rolname = '{{owner_name}}')));
    SELECT t.uuid INTO me FROM tenantry.tenant t WHERE t.id = tenantry.current_tenant();
    owner := CASE WHEN cmd.schema_name ~ '^tenantry_f_[0-9a-f]{32}$'
                  THEN (SELECT t.uuid FROM tenantry.tenant t WHERE t.uuid = substr(cmd.schema_name, 12)::uuid) END;
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

REVOKE ALL ON FUNCTION tenantry.on_tenant_ddl_start(), tenantry.on_tenant_ddl_end() FROM PUBLIC;
