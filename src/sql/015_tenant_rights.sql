-- runs as: installer (event triggers and privileges on pg_catalog's functions need a superuser)
-- tenantry catalog, version 15: rights inside a tenant — read, write and admin login roles, the
-- admin being the tenant's own role — and the first wall for tenant login roles. See
-- docs/rights.md.

-- @include tenant-rights.sql

-- @include tenant-wall.sql

GRANT EXECUTE ON FUNCTION tenantry.session_permission() TO {{app}}, {{maint}}, {{global}};

-- Every registered table, now and later, carries the write guard (views: their base tables).
CREATE FUNCTION tenantry.guard_registered() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
  PERFORM tenantry.guard_table(format('%I.%I', NEW.schema_name, NEW.table_name)::regclass);
  RETURN NULL;
END
$fn$;
REVOKE ALL ON FUNCTION tenantry.guard_registered() FROM PUBLIC;
CREATE TRIGGER registered_table_guarded AFTER INSERT OR UPDATE ON tenantry.registered_table
  FOR EACH ROW EXECUTE FUNCTION tenantry.guard_registered();

SELECT tenantry.guard_table(format('%I.%I', schema_name, table_name)::regclass) FROM tenantry.registered_table;
SELECT tenantry.guard_table(c.oid::regclass)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND (n.nspname LIKE 'tenantry\_f\_%' OR n.nspname LIKE 'tenantry\_t\_%');
-- tenantry.next() writes here for the session's tenant
SELECT tenantry.guard_table('tenantry.sequence_value');

SELECT tenantry.restrict_builtins(ARRAY['{{owner_name}}', '{{app_name}}', '{{maint_name}}']::name[]);

-- PostgreSQL 16 and later: tenant login roles keep inheriting their groups' privileges but can no
-- longer SET ROLE to them (nor make them own objects).
DO $$
DECLARE
  m record;
BEGIN
  IF current_setting('server_version_num')::integer < 160000 THEN
    RETURN;
  END IF;
  FOR m IN SELECT g.rolname AS grp, u.rolname AS member
           FROM pg_auth_members am JOIN pg_roles g ON g.oid = am.roleid JOIN pg_roles u ON u.oid = am.member
           WHERE u.rolname IN (SELECT role_name FROM tenantry.tenant_role)
  LOOP
    EXECUTE format('GRANT %I TO %I WITH INHERIT TRUE, SET FALSE', m.grp, m.member);
  END LOOP;
END
$$;
