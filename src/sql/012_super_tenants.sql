-- tenantry catalog, version 12: super tenants (seed 004). A super tenant has no data of its own
-- (its segments are never allocated); it may act as a regular tenant for a while.

-- SET-EFFECTIVE-TENANT of seed 004: for the rest of the transaction, act as `target` (name or
-- id). Only a super tenant may; anyone else gets TENANTRY_ERR_FORBIDDEN (42501).
CREATE FUNCTION tenantry.set_effective_tenant(target text) RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  me  integer := tenantry.current_tenant();
  -- the tenant the session really is: its login role's, else the one it started as
  real_tenant integer := coalesce((SELECT r.tenant_id FROM tenantry.tenant_role r WHERE r.role_name = session_user),
                                  nullif(current_setting('tenantry.super', true), '')::integer, me);
  t   tenantry.tenant;
BEGIN
  IF real_tenant IS NULL OR real_tenant >= 0 THEN
    RAISE EXCEPTION 'TENANTRY_ERR_FORBIDDEN: Only a super tenant can set an effective tenant.' USING ERRCODE = '42501';
  END IF;
  SELECT * INTO t FROM tenantry.tenant
  WHERE kind = 'regular' AND (lower(name) = lower(target) OR (target ~ '^[0-9]{1,9}$' AND id = target::integer));
  IF t.id IS NULL THEN
    RAISE EXCEPTION 'TENANTRY_ERR_TENANT_NOT_FOUND: Tenant % does not exist.', target USING ERRCODE = '42704';
  END IF;
  IF t.state = 'disabled' THEN
    RAISE EXCEPTION 'TENANTRY_ERR_TENANT_DISABLED: Tenant % is disabled.', t.name USING ERRCODE = '42501';
  END IF;
  PERFORM set_config('tenantry.super', real_tenant::text, true);
  PERFORM set_config('tenantry.effective', t.id::text, true);
  PERFORM set_config('tenantry.tenant', t.id::text, true);
  RETURN t.id;
END
$fn$;

-- The tenant the session acts as (the effective tenant while a super tenant has set one).
CREATE FUNCTION tenantry.effective_tenant_id() RETURNS integer
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT tenantry.current_tenant() $$;

CREATE FUNCTION tenantry.effective_tenant_name() RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT tenantry.tenant_name() $$;

REVOKE ALL ON FUNCTION tenantry.set_effective_tenant(text), tenantry.effective_tenant_id(), tenantry.effective_tenant_name() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenantry.set_effective_tenant(text), tenantry.effective_tenant_id(), tenantry.effective_tenant_name()
  TO {{app}}, {{global}};
