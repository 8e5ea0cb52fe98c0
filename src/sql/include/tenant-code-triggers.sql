-- Shared by the catalog (migration 017) and every database tenant's data plane: the event
-- triggers of tenant-code.sql. Creating event triggers needs a superuser.
DROP EVENT TRIGGER IF EXISTS tenantry_tenant_routines;
CREATE EVENT TRIGGER tenantry_tenant_routines ON ddl_command_end
  WHEN TAG IN ('CREATE FUNCTION', 'CREATE PROCEDURE', 'CREATE AGGREGATE', 'CREATE OPERATOR', 'ALTER FUNCTION',
               'ALTER PROCEDURE', 'ALTER AGGREGATE')
  EXECUTE FUNCTION tenantry.guard_tenant_routines();
DROP EVENT TRIGGER IF EXISTS tenantry_tenant_settings;
CREATE EVENT TRIGGER tenantry_tenant_settings ON ddl_command_end
  WHEN TAG IN ('CREATE VIEW', 'CREATE MATERIALIZED VIEW', 'CREATE TABLE', 'CREATE TABLE AS', 'ALTER TABLE', 'ALTER VIEW',
               'CREATE RULE', 'CREATE POLICY', 'ALTER POLICY', 'CREATE INDEX', 'CREATE DOMAIN', 'ALTER DOMAIN')
  EXECUTE FUNCTION tenantry.guard_tenant_settings();
