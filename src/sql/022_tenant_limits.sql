-- tenantry catalog, version 22: per-tenant limits set by the operator
-- (`tenantry tenant limits NAME --statement-timeout 2s`, tenants.setLimits()).
-- statement_timeout_ms: every statement of the tenant, on every face, is cancelled after this
-- many ms (SQLSTATE 57014). NULL: the server's default. Applied as a role setting of the
-- tenant's login roles and as a transaction-local setting on the application role's path.
ALTER TABLE tenantry.tenant
  ADD COLUMN statement_timeout_ms integer
  CONSTRAINT tenant_statement_timeout_positive CHECK (statement_timeout_ms IS NULL OR statement_timeout_ms > 0);
