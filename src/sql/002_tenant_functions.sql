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

REVOKE ALL ON FUNCTION tenantry.current_tenant(), tenantry.tenant_id(), tenantry.tenant_name() FROM PUBLIC;
REVOKE ALL ON FUNCTION tenantry.tenant_expr(name) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenantry.current_tenant(), tenantry.tenant_id(), tenantry.tenant_name()
  TO {{app}}, {{maint}}, {{global}};
