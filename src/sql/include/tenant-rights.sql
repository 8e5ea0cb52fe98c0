-- Shared by the catalog (migration 015) and every database tenant's data plane: rights inside a
-- tenant (see docs/rights.md). A tenant's own login role is its `admin`; its `write` and `read`
-- login roles are members of it, registered in tenantry.tenant_role with their permission, so
-- tenantry.current_tenant() resolves them like the admin role. What the permission takes away is
-- enforced here, against session_user (which SQL the session sends cannot change):
-- read and write sessions run no DDL at all (an event trigger), read sessions write no table
-- (a statement-level trigger on every table a tenant can reach: one lookup per statement, nothing
-- per row).

ALTER TABLE tenantry.tenant_role
  ADD COLUMN IF NOT EXISTS permission text NOT NULL DEFAULT 'admin' CHECK (permission IN ('read', 'write', 'admin'));
CREATE UNIQUE INDEX IF NOT EXISTS tenant_role_permission ON tenantry.tenant_role (tenant_id, permission);

-- The permission of the session's tenant login role; NULL for any other role.
CREATE OR REPLACE FUNCTION tenantry.session_permission() RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT r.permission FROM tenantry.tenant_role r WHERE r.role_name = session_user $$;

-- BEFORE … FOR EACH STATEMENT on every table a tenant session can write: a read session's
-- INSERT, UPDATE, DELETE, TRUNCATE, MERGE or COPY FROM fails with 42501.
CREATE OR REPLACE FUNCTION tenantry.guard_write() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
  IF EXISTS (SELECT 1 FROM tenantry.tenant_role r WHERE r.role_name = session_user AND r.permission = 'read') THEN
    RAISE EXCEPTION 'TENANTRY_ERR_FORBIDDEN: This user may only read: % on % is not allowed.', TG_OP, TG_TABLE_NAME
      USING ERRCODE = '42501', HINT = 'Ask for the write permission, or run the statement as a user who has it.';
  END IF;
  RETURN NULL;
END
$fn$;

-- Puts the write guard on a table (ordinary, partitioned or foreign; views are guarded through
-- their base tables). Safe to call again; repairs a replaced or disabled guard.
CREATE OR REPLACE FUNCTION tenantry.guard_table(target regclass) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  trg record;
BEGIN
  IF (SELECT relkind FROM pg_class WHERE oid = target) NOT IN ('r', 'p', 'f') THEN
    RETURN;
  END IF;
  SELECT t.tgfoid = 'tenantry.guard_write()'::regprocedure AND t.tgtype = 62 AND t.tgqual IS NULL
           AND cardinality(t.tgattr::int2[]) = 0 AS sound,
         t.tgenabled IN ('O', 'A') AS enabled
  INTO trg
  FROM pg_trigger t WHERE t.tgrelid = target AND t.tgname = 'tenantry_guard_write';
  IF trg.sound IS NOT TRUE THEN
    -- (62: BEFORE, INSERT, DELETE, UPDATE, TRUNCATE, FOR EACH STATEMENT)
    EXECUTE format('CREATE OR REPLACE TRIGGER tenantry_guard_write BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON %s
                    FOR EACH STATEMENT EXECUTE FUNCTION tenantry.guard_write()', target);
  ELSIF NOT trg.enabled THEN
    EXECUTE format('ALTER TABLE %s ENABLE TRIGGER tenantry_guard_write', target);
  END IF;
END
$fn$;

-- ddl_command_start: read and write sessions change no schema object (CREATE, ALTER, DROP,
-- GRANT, COMMENT …, temporary objects included), not even through tenantry's functions.
CREATE OR REPLACE FUNCTION tenantry.guard_ddl() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  p text;
BEGIN
  SELECT r.permission INTO p FROM tenantry.tenant_role r WHERE r.role_name = session_user;
  IF p IN ('read', 'write') THEN
    RAISE EXCEPTION 'TENANTRY_ERR_FORBIDDEN: A user with the % permission cannot change the schema (%).', p, tg_tag
      USING ERRCODE = '42501', HINT = 'Ask a tenant admin to run it.';
  END IF;
END
$fn$;

-- ddl_command_end: every table created in (or altered, or moved into) a tenant's face schema
-- (tenantry_f_…) or a schema tenant's data schema (tenantry_t_…) carries a sound write guard,
-- whoever owns it.
CREATE OR REPLACE FUNCTION tenantry.guard_new_tables() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  rel regclass;
BEGIN
  FOR rel IN
    SELECT DISTINCT c.oid::regclass
    FROM pg_event_trigger_ddl_commands() cmd
    JOIN pg_class c ON c.oid = CASE WHEN cmd.classid = 'pg_class'::regclass THEN cmd.objid
                                    WHEN cmd.classid = 'pg_trigger'::regclass
                                    THEN (SELECT t.tgrelid FROM pg_trigger t WHERE t.oid = cmd.objid) END
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND (n.nspname LIKE 'tenantry\_f\_%' OR n.nspname LIKE 'tenantry\_t\_%')
  LOOP
    PERFORM tenantry.guard_table(rel);
  END LOOP;
END
$fn$;

-- sql_drop: a tenant session cannot drop the write guard of a table (dropping the table is fine).
CREATE OR REPLACE FUNCTION tenantry.guard_dropped() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_event_trigger_dropped_objects() o
             WHERE o.object_type = 'trigger' AND o.original AND o.object_identity LIKE 'tenantry\_guard\_write on %')
     AND EXISTS (SELECT 1 FROM tenantry.tenant_role r WHERE r.role_name = session_user) THEN
    RAISE EXCEPTION 'TENANTRY_ERR_FORBIDDEN: The trigger tenantry_guard_write keeps read-only users from writing; it cannot be dropped.'
      USING ERRCODE = '42501';
  END IF;
END
$fn$;

-- The roles that keep what restrict_builtins() takes from PUBLIC (tenantry's trusted roles).
CREATE TABLE IF NOT EXISTS tenantry.wall_grantee (role_name name PRIMARY KEY);
REVOKE ALL ON tenantry.wall_grantee FROM PUBLIC;

-- The first wall for tenant login roles (docs/rights.md): built-in functions and views that let a
-- session reach beyond its own tenant — advisory locks and pg_notify() (cluster-wide shared
-- memory other sessions depend on) and everything that shows other sessions (pg_stat_activity,
-- pg_locks, pg_stat_statements …) — are revoked from PUBLIC and granted to the trusted roles
-- only (`trusted` joins tenantry.wall_grantee); the statistics also to pg_read_all_stats
-- (monitoring). Safe to call again; CREATE EXTENSION runs it again by itself.
CREATE OR REPLACE FUNCTION tenantry.restrict_builtins(trusted name[]) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  obj      record;
  grantees text;
BEGIN
  INSERT INTO tenantry.wall_grantee (role_name) SELECT DISTINCT r FROM unnest(trusted) AS r ON CONFLICT DO NOTHING;
  SELECT string_agg(quote_ident(g.role_name), ', ' ORDER BY g.role_name) INTO grantees
  FROM tenantry.wall_grantee g JOIN pg_roles p ON p.rolname = g.role_name;
  IF grantees IS NULL THEN
    RAISE EXCEPTION 'tenantry.restrict_builtins: name at least one trusted role' USING ERRCODE = '22023';
  END IF;
  FOR obj IN
    SELECT p.oid::regprocedure AS fn, p.proname !~ '^pg_(try_)?advisory_|^pg_notify$' AS stats
    FROM pg_proc p
    WHERE p.pronamespace = 'pg_catalog'::regnamespace
      AND (p.proname ~ '^pg_(try_)?advisory_' OR p.proname LIKE 'pg\_stat\_get\_backend\_%'
           OR p.proname IN ('pg_notify', 'pg_stat_get_activity', 'pg_stat_get_progress_info', 'pg_lock_status',
                            'pg_blocking_pids', 'pg_safe_snapshot_blocking_pids', 'pg_prepared_xact',
                            'pg_stat_get_wal_senders', 'pg_stat_get_wal_receiver', 'pg_stat_get_subscription'))
    UNION ALL
    -- (only what PUBLIC may run: pg_stat_statements_reset() stays the superuser's)
    SELECT p.oid::regprocedure, true
    FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid JOIN pg_proc p ON p.oid = d.objid
    WHERE e.extname = 'pg_stat_statements' AND d.deptype = 'e' AND d.classid = 'pg_proc'::regclass
      AND (p.proacl IS NULL OR EXISTS (SELECT 1 FROM aclexplode(p.proacl) a WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE'))
  LOOP
    EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', obj.fn);
    EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %s%s', obj.fn, grantees,
                   CASE WHEN obj.stats THEN ', pg_read_all_stats' ELSE '' END);
  END LOOP;
  FOR obj IN
    SELECT c.oid::regclass AS rel
    FROM pg_class c
    WHERE c.relnamespace = 'pg_catalog'::regnamespace AND c.relkind = 'v'
      AND (c.relname LIKE 'pg\_stat\_progress\_%'
           OR c.relname IN ('pg_stat_activity', 'pg_stat_ssl', 'pg_stat_gssapi', 'pg_locks', 'pg_prepared_xacts',
                            'pg_stat_replication', 'pg_stat_wal_receiver', 'pg_stat_subscription'))
    UNION ALL
    SELECT d.objid::regclass
    FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
    WHERE e.extname = 'pg_stat_statements' AND d.deptype = 'e' AND d.classid = 'pg_class'::regclass
  LOOP
    EXECUTE format('REVOKE ALL ON %s FROM PUBLIC', obj.rel);
    EXECUTE format('GRANT SELECT ON %s TO %s, pg_read_all_stats', obj.rel, grantees);
  END LOOP;
END
$fn$;

-- ddl_command_end of CREATE / ALTER EXTENSION: an extension's new session views (e.g.
-- pg_stat_statements) are restricted at once.
CREATE OR REPLACE FUNCTION tenantry.guard_extensions() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
  IF EXISTS (SELECT 1 FROM tenantry.wall_grantee) THEN
    PERFORM tenantry.restrict_builtins('{}');
  END IF;
END
$fn$;

REVOKE ALL ON FUNCTION tenantry.session_permission(), tenantry.guard_write(), tenantry.guard_table(regclass),
  tenantry.guard_ddl(), tenantry.guard_new_tables(), tenantry.guard_dropped(), tenantry.restrict_builtins(name[]),
  tenantry.guard_extensions() FROM PUBLIC;
