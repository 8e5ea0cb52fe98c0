-- runs as: installer (event triggers need a superuser)
-- tenantry catalog, version 17: code a tenant writes never runs as someone else with power over
-- the tenant setting. Tenants' own views, defaults, rules and policies are read by trusted
-- application code too (the app role, whose tenant is a transaction-local setting); if such an
-- object could call set_config, a tenant could switch that code to another tenant for the rest of
-- its transaction. So tenant login roles may not create routines (whose bodies PostgreSQL does
-- not track), and no object in a tenant schema may depend on set_config.

-- @include tenant-code.sql

-- @include tenant-code-triggers.sql
