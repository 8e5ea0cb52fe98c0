-- tenantry catalog, version 9: allocated and unallocated segments (seed 004). Each tenant's
-- segment of a multi-tenant table is allocated or not: regular tenants' segments are allocated
-- at creation, the default tenant's are not, and super tenants have none. Touching an
-- unallocated segment is an error.

-- Exceptions to that rule, per segment and table: allocated = false for a regular tenant,
-- allocated = true for the default tenant.
CREATE TABLE tenantry.allocation (
  segment     integer NOT NULL REFERENCES tenantry.tenant (id) ON DELETE CASCADE,
  schema_name name NOT NULL,
  table_name  name NOT NULL,
  allocated   boolean NOT NULL,
  PRIMARY KEY (segment, schema_name, table_name),
  FOREIGN KEY (schema_name, table_name) REFERENCES tenantry.registered_table (schema_name, table_name) ON DELETE CASCADE
);
REVOKE ALL ON tenantry.allocation FROM PUBLIC;
GRANT SELECT ON tenantry.allocation TO {{maint}};

-- True when the current tenant's segment of `tbl` ('schema.table') is allocated; raises
-- TENANTRY_ERR_NOT_ALLOCATED when it is not; NULL-safe (no tenant: true, and the isolation
-- policy then matches no row).
CREATE FUNCTION tenantry.allocated(schema_name name, table_name name) RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  t integer := tenantry.current_tenant();
  a boolean;
BEGIN
  IF t IS NULL THEN
    RETURN true;
  END IF;
  SELECT x.allocated INTO a FROM tenantry.allocation x
  WHERE x.segment = t AND x.schema_name = allocated.schema_name AND x.table_name = allocated.table_name;
  IF coalesce(a, t > 0) THEN
    RETURN true;
  END IF;
  RAISE EXCEPTION 'TENANTRY_ERR_NOT_ALLOCATED: The segment of tenant % in %.% is not allocated; allocate it with `tenantry tenant allocate`.',
    (SELECT name FROM tenantry.tenant WHERE id = t), schema_name, table_name
    USING ERRCODE = '55000';
END
$fn$;
REVOKE ALL ON FUNCTION tenantry.allocated(name, name) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenantry.allocated(name, name) TO {{app}}, {{global}}, {{maint}};

-- (Re)creates the policies of a multi-tenant base table so that they also enforce allocation.
-- While no regular tenant's segment of the table is deallocated, only the default tenant (id 0)
-- needs the catalog check: the isolation policy asks for it only then, in the same single
-- sub-select that yields the tenant, so the common case costs one inline comparison. Once a
-- regular segment is deallocated (or the table is grouped), a restrictive policy checks every
-- statement against the catalog.
CREATE FUNCTION tenantry.add_allocation_policy(base regclass) RETURNS void
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
    pol := format('%I = (SELECT CASE WHEN x.t > 0 OR tenantry.allocated(%L, %L) THEN x.t END FROM (SELECT %s AS t) x)',
                  col, rel.nspname, rel.relname, tenantry.tenant_expr('{{app_name}}'));
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
REVOKE ALL ON FUNCTION tenantry.add_allocation_policy(regclass) FROM PUBLIC;

SELECT tenantry.add_allocation_policy(format('%I.%I', schema_name, table_name)::regclass)
FROM tenantry.registered_table WHERE kind = 'multi_tenant';
