-- Shared by the catalog (migration 017) and every database tenant's data plane: the guards on code
-- a tenant writes (see migration 017). Placeholders: {{owner_name}} (bare name).

-- ddl_command_start: tenant login roles create no functions, procedures, aggregates, operators,
-- casts, languages or transforms.
-- ddl_command_end: in a tenant session, no routine may end up owned by a role that is neither a
-- superuser, tenantry's owner nor its application role — i.e. one the tenant created (owned by its login role, or by a
-- group it can SET ROLE to). Routines tenantry's own SECURITY DEFINER functions create for the
-- tenant (add_tenant_column's trigger function) belong to their owner and are allowed.
CREATE OR REPLACE FUNCTION tenantry.guard_tenant_routines() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  made record;
BEGIN
  IF tenantry.session_permission() IS NULL THEN
    RETURN;
  END IF;
  FOR made IN
    SELECT p.oid::regprocedure AS routine
    FROM pg_event_trigger_ddl_commands() cmd
    JOIN pg_proc p ON cmd.classid = 'pg_proc'::regclass AND p.oid = cmd.objid
    JOIN pg_roles o ON o.oid = p.proowner
    WHERE NOT o.rolsuper AND o.rolname NOT IN ('{{owner_name}}', '{{app_name}}')
    UNION ALL
    SELECT NULL
    FROM pg_event_trigger_ddl_commands() cmd
    JOIN pg_operator op ON cmd.classid = 'pg_operator'::regclass AND op.oid = cmd.objid
    JOIN pg_roles o ON o.oid = op.oprowner
    WHERE NOT o.rolsuper AND o.rolname NOT IN ('{{owner_name}}', '{{app_name}}')
  LOOP
    RAISE EXCEPTION 'TENANTRY_ERR_FORBIDDEN: Tenants cannot create routines (%): their code would run inside trusted sessions.', tg_tag
      USING ERRCODE = '42501', HINT = 'Use views; ask the operator to install functions the tenant needs.';
  END LOOP;
END
$fn$;

-- ddl_command_end: after a tenant session's DDL, nothing in a tenant schema may call set_config.
CREATE OR REPLACE FUNCTION tenantry.guard_tenant_settings() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  found regprocedure;
BEGIN
  IF tenantry.session_permission() IS NULL AND tenantry.current_tenant() IS NULL THEN
    RETURN;
  END IF;
  -- PostgreSQL records no dependency on built-in functions, so the stored expression trees
  -- (views' rules, defaults, check constraints, policies, index expressions) of the relations
  -- this command touched are searched for the functions they call. Refused: set_config, the
  -- built-ins that run SQL text (their text could call set_config), and any function the
  -- session's own role may not execute (e.g. tenantry.scan_tenants: trusted sessions may, so a
  -- tenant's view must not hand it to them).
  WITH cmds AS (
    SELECT c.classid, c.objid FROM pg_event_trigger_ddl_commands() c
  ), touched AS (
    SELECT CASE cmd.classid
             WHEN 'pg_class'::regclass THEN cmd.objid
             WHEN 'pg_rewrite'::regclass THEN (SELECT r.ev_class FROM pg_rewrite r WHERE r.oid = cmd.objid)
             WHEN 'pg_attrdef'::regclass THEN (SELECT a.adrelid FROM pg_attrdef a WHERE a.oid = cmd.objid)
             WHEN 'pg_constraint'::regclass THEN (SELECT k.conrelid FROM pg_constraint k WHERE k.oid = cmd.objid)
             WHEN 'pg_policy'::regclass THEN (SELECT p.polrelid FROM pg_policy p WHERE p.oid = cmd.objid)
             WHEN 'pg_trigger'::regclass THEN (SELECT t.tgrelid FROM pg_trigger t WHERE t.oid = cmd.objid)
           END AS rel
    FROM cmds cmd
  ), rels AS (
    SELECT rel FROM touched WHERE rel IS NOT NULL
    UNION SELECT i.indrelid FROM pg_index i JOIN touched t ON t.rel = i.indexrelid
  ), trees AS (
    SELECT r.ev_action::text AS tree FROM pg_rewrite r JOIN rels ON rels.rel = r.ev_class
    UNION ALL SELECT a.adbin::text FROM pg_attrdef a JOIN rels ON rels.rel = a.adrelid
    UNION ALL SELECT k.conbin::text FROM pg_constraint k JOIN rels ON rels.rel = k.conrelid WHERE k.conbin IS NOT NULL
    UNION ALL SELECT coalesce(p.polqual::text, '') || coalesce(p.polwithcheck::text, '') FROM pg_policy p JOIN rels ON rels.rel = p.polrelid
    UNION ALL SELECT coalesce(i.indexprs::text, '') || coalesce(i.indpred::text, '') FROM pg_index i JOIN rels ON rels.rel = i.indrelid
    -- domains' checks run wherever the domain is used
    UNION ALL SELECT k.conbin::text FROM pg_constraint k JOIN cmds ON cmds.classid = 'pg_type'::regclass AND k.contypid = cmds.objid
      WHERE k.conbin IS NOT NULL
  ), called AS (
    SELECT DISTINCT m[1]::oid AS fn FROM trees, regexp_matches(trees.tree, ':(?:funcid|opfuncid) (\d+)', 'g') AS m
  )
  SELECT f.oid::regprocedure INTO found
  FROM called JOIN pg_proc f ON f.oid = called.fn
  WHERE f.oid = ANY (ARRAY[
          to_regprocedure('pg_catalog.set_config(text,text,boolean)'),
          to_regprocedure('pg_catalog.query_to_xml(text,boolean,boolean,text)'),
          to_regprocedure('pg_catalog.query_to_xmlschema(text,boolean,boolean,text)'),
          to_regprocedure('pg_catalog.query_to_xml_and_xmlschema(text,boolean,boolean,text)'),
          to_regprocedure('pg_catalog.cursor_to_xml(refcursor,integer,boolean,boolean,text)'),
          to_regprocedure('pg_catalog.cursor_to_xmlschema(refcursor,boolean,boolean,text)'),
          to_regprocedure('pg_catalog.ts_stat(text)'),
          to_regprocedure('pg_catalog.ts_stat(text,text)'),
          to_regprocedure('pg_catalog.ts_rewrite(tsquery,text)')]::oid[])
     OR NOT has_function_privilege(session_user, f.oid, 'EXECUTE')
  LIMIT 1;
  IF found IS NOT NULL THEN
    RAISE EXCEPTION 'TENANTRY_ERR_FORBIDDEN: Objects of a tenant may not call %.', found
      USING ERRCODE = '42501', HINT = 'Views, defaults, rules and policies of a tenant run inside trusted sessions too.';
  END IF;
END
$fn$;
REVOKE ALL ON FUNCTION tenantry.guard_tenant_routines(), tenantry.guard_tenant_settings() FROM PUBLIC;
