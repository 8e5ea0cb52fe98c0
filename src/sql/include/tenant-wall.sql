-- Shared by the catalog (migration 015) and every database tenant's data plane: the event
-- triggers of tenant-rights.sql. Creating event triggers needs a superuser.
DROP EVENT TRIGGER IF EXISTS tenantry_rights_ddl;
CREATE EVENT TRIGGER tenantry_rights_ddl ON ddl_command_start
  EXECUTE FUNCTION tenantry.guard_ddl();
DROP EVENT TRIGGER IF EXISTS tenantry_rights_tables;
CREATE EVENT TRIGGER tenantry_rights_tables ON ddl_command_end
  WHEN TAG IN ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO', 'ALTER TABLE', 'CREATE TRIGGER', 'ALTER TRIGGER')
  EXECUTE FUNCTION tenantry.guard_new_tables();
DROP EVENT TRIGGER IF EXISTS tenantry_rights_drop;
CREATE EVENT TRIGGER tenantry_rights_drop ON sql_drop
  WHEN TAG IN ('DROP TRIGGER')
  EXECUTE FUNCTION tenantry.guard_dropped();
DROP EVENT TRIGGER IF EXISTS tenantry_rights_extensions;
CREATE EVENT TRIGGER tenantry_rights_extensions ON ddl_command_end
  WHEN TAG IN ('CREATE EXTENSION', 'ALTER EXTENSION')
  EXECUTE FUNCTION tenantry.guard_extensions();
