-- Shared by the catalog (migration 008) and every database tenant's data plane: the event
-- triggers of tenant-views.sql. Creating event triggers needs a superuser.
DROP EVENT TRIGGER IF EXISTS tenantry_tenant_ddl_start;
CREATE EVENT TRIGGER tenantry_tenant_ddl_start ON ddl_command_start
  WHEN TAG IN ('CREATE VIEW', 'CREATE TABLE', 'CREATE TABLE AS', 'CREATE INDEX', 'CREATE FUNCTION', 'CREATE SEQUENCE')
  EXECUTE FUNCTION tenantry.on_tenant_ddl_start();
DROP EVENT TRIGGER IF EXISTS tenantry_tenant_ddl_end;
CREATE EVENT TRIGGER tenantry_tenant_ddl_end ON ddl_command_end
  WHEN TAG IN ('CREATE VIEW')
  EXECUTE FUNCTION tenantry.on_tenant_ddl_end();
