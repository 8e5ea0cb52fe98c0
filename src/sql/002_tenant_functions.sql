-- tenantry catalog, version 2: the functions row-level security and applications call.

-- Login roles that act for exactly one tenant: current_tenant() resolves them from session_user.
CREATE TABLE tenantry.tenant_role (
  role_name  name PRIMARY KEY,
  tenant_id  integer NOT NULL REFERENCES tenantry.tenant (id) ON DELETE CASCADE,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tenant_role_tenant ON tenantry.tenant_role (tenant_id);
REVOKE ALL ON tenantry.tenant_role FROM PUBLIC;

-- @include current-tenant.sql

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
REVOKE ALL ON FUNCTION tenantry.tenant_expr(name) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenantry.current_tenant(), tenantry.tenant_id(), tenantry.tenant_name()
  TO {{app}}, {{maint}}, {{global}};
