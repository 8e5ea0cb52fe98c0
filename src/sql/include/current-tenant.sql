-- Shared by the catalog (migration 002) and every database tenant's data plane.

-- The tenant the current session or transaction acts for. A tenant login role (registered in
-- tenantry.tenant_role) always acts for its own tenant: SQL it sends cannot change that. Any
-- other role acts for the transaction-local setting tenantry.tenant. Unset, empty, malformed or
-- unknown gives NULL, which matches no row. PL/pgSQL, so its statements' plans are cached.
CREATE OR REPLACE FUNCTION tenantry.current_tenant() RETURNS integer
LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  setting text;
  found_id integer;
BEGIN
  SELECT r.tenant_id INTO found_id FROM tenantry.tenant_role r WHERE r.role_name = session_user;
  IF found_id < 0 THEN
    -- a super tenant's own role may act as the effective tenant it set (set_effective_tenant)
    setting := current_setting('tenantry.effective', true);
    IF setting ~ '^[1-9][0-9]{0,8}$' THEN
      found_id := setting::integer;
    END IF;
  ELSIF found_id IS NULL THEN
    setting := current_setting('tenantry.tenant', true);
    IF setting IS NULL OR setting !~ '^(0|-?[1-9][0-9]{0,8})$' THEN
      RETURN NULL;
    END IF;
    found_id := setting::integer;
  END IF;
  PERFORM 1 FROM tenantry.tenant t WHERE t.id = found_id;
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;
  RETURN found_id;
END
$fn$;

-- @include tenant-expr.sql

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
