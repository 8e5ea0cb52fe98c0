-- tenantry catalog, version 2: the functions row-level security and applications call.

-- The tenant the current transaction acts for. Reads the transaction-local setting
-- tenantry.tenant that tenantry sets; unset, empty, malformed or unknown gives NULL, and
-- NULL matches no row. Policies call it as (SELECT tenantry.current_tenant()) so that it is
-- evaluated once per query.
CREATE FUNCTION tenantry.current_tenant() RETURNS integer
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT t.id
  FROM tenantry.tenant t
  WHERE t.id = (
    SELECT CASE WHEN s ~ '^(0|-?[1-9][0-9]{0,8})$' THEN s::integer END
    FROM (SELECT current_setting('tenantry.tenant', true) AS s) AS setting
  )
$$;

-- TENANT-ID() of seed 004: the current tenant's id, NULL when none.
CREATE FUNCTION tenantry.tenant_id() RETURNS integer
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT tenantry.current_tenant() $$;

-- TENANT-NAME() of seed 004: the current tenant's name, NULL when none.
CREATE FUNCTION tenantry.tenant_name() RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT t.name FROM tenantry.tenant t WHERE t.id = tenantry.current_tenant() $$;

REVOKE ALL ON FUNCTION tenantry.current_tenant(), tenantry.tenant_id(), tenantry.tenant_name() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenantry.current_tenant(), tenantry.tenant_id(), tenantry.tenant_name()
  TO {{app}}, {{maint}}, {{global}};
