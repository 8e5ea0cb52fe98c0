-- runs as: installer (event triggers need a superuser)
-- tenantry catalog, version 17: code a tenant writes never runs as someone else with power over
-- the tenant setting. Tenants' own views, defaults, rules and policies are read by trusted
-- application code too (the app role, whose tenant is a transaction-local setting); if such an
-- object could call set_config, a tenant could switch that code to another tenant for the rest of
-- its transaction. So tenant login roles may not create routines (whose bodies PostgreSQL does
-- not track), and no object in a tenant schema may depend on set_config.

-- ddl_command_start: tenant login roles create no functions, procedures, aggregates, operators,
-- casts, languages or transforms.
CREATE FUNCTION tenantry.guard_tenant_routines() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
  -- (tenantry's own SECURITY DEFINER functions, e.g. add_tenant_column, run as their owner)
  IF tenantry.session_permission() IS NOT NULL
     AND current_user <> '{{owner_name}}'
     AND NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    RAISE EXCEPTION 'TENANTRY_ERR_FORBIDDEN: Tenants cannot create routines (%): their code would run inside trusted sessions.', tg_tag
      USING ERRCODE = '42501', HINT = 'Use views; ask the operator to install functions the tenant needs.';
  END IF;
END
$fn$;

-- ddl_command_end: after a tenant session's DDL, nothing in a tenant schema may call set_config.
CREATE FUNCTION tenantry.guard_tenant_settings() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  found text;
BEGIN
  IF tenantry.session_permission() IS NULL AND tenantry.current_tenant() IS NULL THEN
    RETURN;
  END IF;
  SELECT n.nspname INTO found
  FROM pg_depend d
  JOIN pg_class c ON c.oid = CASE d.classid
      WHEN 'pg_rewrite'::regclass THEN (SELECT r.ev_class FROM pg_rewrite r WHERE r.oid = d.objid)
      WHEN 'pg_attrdef'::regclass THEN (SELECT a.adrelid FROM pg_attrdef a WHERE a.oid = d.objid)
      WHEN 'pg_constraint'::regclass THEN (SELECT k.conrelid FROM pg_constraint k WHERE k.oid = d.objid)
      WHEN 'pg_policy'::regclass THEN (SELECT p.polrelid FROM pg_policy p WHERE p.oid = d.objid)
      WHEN 'pg_class'::regclass THEN d.objid
      WHEN 'pg_trigger'::regclass THEN (SELECT t.tgrelid FROM pg_trigger t WHERE t.oid = d.objid)
    END
  JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE d.refclassid = 'pg_proc'::regclass
    AND d.refobjid = 'pg_catalog.set_config(text,text,boolean)'::regprocedure
    AND (n.nspname LIKE 'tenantry\_f\_%' OR n.nspname LIKE 'tenantry\_t\_%')
  LIMIT 1;
  IF found IS NOT NULL THEN
    RAISE EXCEPTION 'TENANTRY_ERR_FORBIDDEN: Objects of a tenant may not call set_config.'
      USING ERRCODE = '42501', HINT = 'Views, defaults, rules and policies of a tenant run inside trusted sessions too.';
  END IF;
END
$fn$;
REVOKE ALL ON FUNCTION tenantry.guard_tenant_routines(), tenantry.guard_tenant_settings() FROM PUBLIC;

CREATE EVENT TRIGGER tenantry_tenant_routines ON ddl_command_start
  WHEN TAG IN ('CREATE FUNCTION', 'CREATE PROCEDURE', 'CREATE AGGREGATE', 'CREATE OPERATOR', 'CREATE CAST',
               'CREATE LANGUAGE', 'CREATE TRANSFORM', 'CREATE OPERATOR CLASS', 'CREATE OPERATOR FAMILY')
  EXECUTE FUNCTION tenantry.guard_tenant_routines();
CREATE EVENT TRIGGER tenantry_tenant_settings ON ddl_command_end
  WHEN TAG IN ('CREATE VIEW', 'CREATE MATERIALIZED VIEW', 'CREATE TABLE', 'CREATE TABLE AS', 'ALTER TABLE', 'ALTER VIEW',
               'CREATE RULE', 'CREATE POLICY', 'ALTER POLICY', 'CREATE INDEX', 'CREATE DOMAIN', 'ALTER DOMAIN')
  EXECUTE FUNCTION tenantry.guard_tenant_settings();
