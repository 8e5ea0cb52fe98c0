-- runs as: installer (policies and defaults of registered tables whose owner may not be ours)
-- tenantry catalog, version 26: a cheaper isolation policy on shared multi-tenant tables
-- (issue #3's rls-overhead goal).
--
-- PostgreSQL plans and initialises every node of a policy's expression in every query that
-- touches the table, whether the node runs or not: each function or operator costs a catalog
-- look-up and a privilege check. The policy of version 9 named the current tenant through a
-- validating regular expression (twice), a sub-select in FROM that the planner pulled up (so
-- tenant roles called tenantry.current_tenant() twice per query) and the allocation check; on
-- a point lookup it cost about 6 µs per execution of a prepared statement and 28 µs per query
-- with the simple protocol. Now:
--   * the app role's tenant is NULLIF(current_setting('tenantry.tenant', true), '')::integer
--     (tenant-expr.sql): tenantry sets it, so it needs no regular expression; text that is not
--     an integer now fails the statement instead of matching no row;
--   * a regular tenant of the app role (id > 0) is NULLIF(GREATEST(setting, 0), 0), one
--     expression with no function call; anything else (the default tenant, a super tenant, no
--     setting, every other role) asks tenantry.segment_tenant(), which checks the allocation
--     of the default and super tenants' segments as before.

-- @include tenant-expr.sql

-- The current tenant for the isolation policy of table schema_name.table_name: NULL when none;
-- a regular tenant's id; the default or a super tenant's id when its segment is allocated
-- (tenantry.allocated raises TENANTRY_ERR_NOT_ALLOCATED otherwise). Regular tenants' own
-- deallocated segments are the restrictive tenantry_allocation policy's business. Not SECURITY
-- DEFINER (the functions it calls are) and every name qualified, so no search_path is needed.
CREATE FUNCTION tenantry.segment_tenant(schema_name name, table_name name) RETURNS integer
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $fn$
DECLARE
  t integer := tenantry.current_tenant();
BEGIN
  IF t IS NULL OR t OPERATOR(pg_catalog.>) 0 OR tenantry.allocated(schema_name, table_name) THEN
    RETURN t;
  END IF;
  RETURN NULL;
END
$fn$;
REVOKE ALL ON FUNCTION tenantry.segment_tenant(name, name) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenantry.segment_tenant(name, name) TO {{owner}}, {{app}}, {{global}}, {{maint}};

-- The isolation policy of a shared multi-tenant table (see above and migration 9).
CREATE OR REPLACE FUNCTION tenantry.isolation_policy(app_role name, tenant_column name, schema_name name, table_name name)
RETURNS text
LANGUAGE sql IMMUTABLE
AS $fn$
  SELECT format(
    '%I = (SELECT COALESCE(CASE WHEN SESSION_USER OPERATOR(pg_catalog.=) %L::name'
    ' THEN NULLIF(GREATEST(NULLIF(pg_catalog.current_setting(''tenantry.tenant'', true), '''')::integer, 0), 0) END,'
    ' tenantry.segment_tenant(%L, %L)))', tenant_column, app_role, schema_name, table_name)
$fn$;
REVOKE ALL ON FUNCTION tenantry.isolation_policy(name, name, name, name) FROM PUBLIC;

-- As in migration 9, with the policy above.
CREATE OR REPLACE FUNCTION tenantry.add_allocation_policy(base regclass) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  rel       record;
  col       name;
  grouped   boolean;
  check_all boolean;
  pol       text;
BEGIN
  SELECT n.nspname, c.relname INTO rel FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = base;
  SELECT r.tenant_column INTO col FROM tenantry.registered_table r
  WHERE r.schema_name = rel.nspname AND r.table_name = rel.relname AND r.kind = 'multi_tenant';
  grouped := EXISTS (SELECT 1 FROM tenantry.tenant_group g WHERE g.schema_name = rel.nspname AND g.table_name = rel.relname);
  check_all := grouped OR EXISTS (SELECT 1 FROM tenantry.allocation a
                                  WHERE a.schema_name = rel.nspname AND a.table_name = rel.relname
                                    AND a.segment <> 0 AND NOT a.allocated);
  IF NOT grouped THEN
    pol := tenantry.isolation_policy('{{app_name}}', col, rel.nspname, rel.relname);
    EXECUTE format('DROP POLICY IF EXISTS tenantry_isolation ON %s', base);
    EXECUTE format('CREATE POLICY tenantry_isolation ON %s AS PERMISSIVE FOR ALL USING (%s) WITH CHECK (%s)', base, pol, pol);
  END IF;
  EXECUTE format('DROP POLICY IF EXISTS tenantry_allocation ON %s', base);
  IF check_all THEN
    pol := format('(SELECT tenantry.allocated(%L, %L))', rel.nspname, rel.relname);
    EXECUTE format('CREATE POLICY tenantry_allocation ON %s AS RESTRICTIVE FOR ALL USING (%s) WITH CHECK (%s)', base, pol, pol);
  END IF;
END
$fn$;

-- Every registered multi-tenant table: the new policy and tenant-column default.
DO $do$
DECLARE
  r record;
BEGIN
  FOR r IN
    SELECT format('%I.%I', t.schema_name, t.table_name) AS rel, t.tenant_column
    FROM tenantry.registered_table t
    WHERE t.kind = 'multi_tenant' AND to_regclass(format('%I.%I', t.schema_name, t.table_name)) IS NOT NULL
  LOOP
    EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET DEFAULT %s', r.rel, r.tenant_column, tenantry.tenant_expr('{{app_name}}'));
    PERFORM tenantry.add_allocation_policy(r.rel::regclass);
  END LOOP;
END
$do$;

-- The catalog's own runtime tables (jobs, events, counters): policies and defaults likewise.
SELECT tenantry.runtime_install('tenantry', '', '{{app_name}}', '{{maint_name}}', '{{owner_name}}');
DO $do$
DECLARE
  tbl text;
BEGIN
  FOREACH tbl IN ARRAY ARRAY['job', 'event', 'event_head', 'id_counter'] LOOP
    EXECUTE format('ALTER TABLE tenantry.%I ALTER COLUMN tenant_id SET DEFAULT %s', tbl, tenantry.tenant_expr('{{app_name}}'));
  END LOOP;
END
$do$;
