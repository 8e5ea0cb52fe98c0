-- Shared by current-tenant.sql (catalog migration 002, database tenants' data planes) and
-- migration 026, which replaced the app role's validating form with this cheaper one.

-- The SQL expression policies and tenant-column defaults use for the current tenant. Sessions
-- of the application role read the transaction-local setting inline: no function call (a
-- PL/pgSQL call costs microseconds per statement) and as few operators as possible, because
-- PostgreSQL plans and initialises every node of this expression in every query that touches a
-- multi-tenant table. tenantry sets that setting itself; unset or empty gives NULL (no row), an
-- id that names no tenant matches no row and fails the tenant foreign key on insert, and text
-- that is not an integer fails the statement (22P02). Every other session goes through
-- tenantry.current_tenant(), which trusts no setting a tenant role could have made.
CREATE OR REPLACE FUNCTION tenantry.tenant_expr(app_role name) RETURNS text
LANGUAGE sql IMMUTABLE
AS $fn$
  SELECT format(
    'CASE WHEN SESSION_USER OPERATOR(pg_catalog.=) %L::name'
    ' THEN NULLIF(pg_catalog.current_setting(''tenantry.tenant'', true), '''')::integer'
    ' ELSE tenantry.current_tenant() END', app_role)
$fn$;
