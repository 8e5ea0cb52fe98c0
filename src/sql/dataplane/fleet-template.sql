-- Installed in a template database (docs/fleet.md) once its data plane and tables exist; every
-- database cloned from it (CREATE DATABASE … TEMPLATE) inherits both objects below. Idempotent.

-- The application migration version this database is at, written in the same transaction as
-- each migration `tenantry migrate` applies here (the catalog keeps a copy for `migrate status`).
CREATE TABLE IF NOT EXISTS tenantry.fleet_version (
  only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
  version  bigint NOT NULL
);
REVOKE ALL ON tenantry.fleet_version FROM PUBLIC;

-- Turns a fresh clone of the template into tenant new_id's database: the template's tenant row
-- and role mapping become the tenant's, its face schema is renamed, every privilege the
-- template's role holds here passes to the tenant's role, and the database is closed to all but
-- the application role and the tenant's role.
CREATE OR REPLACE FUNCTION tenantry.fleet_adopt(template_role name, new_role name, app_role name, new_id integer,
                                                new_uuid uuid, new_name text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  r        record;
  old_id   integer;
  old_face name;
  new_face name := 'tenantry_f_' || replace(new_uuid::text, '-', '');
  tpl      oid := template_role::regrole;
BEGIN
  SELECT tr.tenant_id INTO old_id FROM tenantry.tenant_role tr WHERE tr.role_name = template_role;
  SELECT 'tenantry_f_' || replace(t.uuid::text, '-', '') INTO old_face FROM tenantry.tenant t WHERE t.id = old_id;
  INSERT INTO tenantry.tenant (id, uuid, name) VALUES (new_id, new_uuid, new_name);
  UPDATE tenantry.tenant_role tr SET role_name = new_role, tenant_id = new_id WHERE tr.role_name = template_role;
  DELETE FROM tenantry.tenant WHERE id = old_id;
  EXECUTE format('ALTER SCHEMA %I RENAME TO %I', old_face, new_face);
  FOR r IN SELECT c.oid::regclass AS rel, c.relkind, string_agg(a.privilege_type, ', ') AS privs
           FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a
           WHERE a.grantee = tpl GROUP BY 1, 2 LOOP
    EXECUTE format('GRANT %s ON %s %s TO %I', r.privs, CASE WHEN r.relkind = 'S' THEN 'SEQUENCE' ELSE 'TABLE' END,
                   r.rel, new_role);
  END LOOP;
  FOR r IN SELECT c.attrelid::regclass AS rel, string_agg(DISTINCT a.privilege_type, ',') AS privs,
                  string_agg(quote_ident(c.attname), ', ' ORDER BY c.attnum) AS cols
           FROM pg_attribute c CROSS JOIN LATERAL aclexplode(c.attacl) a
           WHERE a.grantee = tpl AND NOT c.attisdropped GROUP BY c.attrelid, a.privilege_type LOOP
    EXECUTE format('GRANT %s (%s) ON %s TO %I', r.privs, r.cols, r.rel, new_role);
  END LOOP;
  FOR r IN SELECT n.nspname, string_agg(a.privilege_type, ', ') AS privs
           FROM pg_namespace n CROSS JOIN LATERAL aclexplode(n.nspacl) a
           WHERE a.grantee = tpl GROUP BY 1 LOOP
    EXECUTE format('GRANT %s ON SCHEMA %I TO %I', r.privs, r.nspname, new_role);
  END LOOP;
  FOR r IN SELECT DISTINCT p.oid::regprocedure AS fn
           FROM pg_proc p CROSS JOIN LATERAL aclexplode(p.proacl) a
           WHERE a.grantee = tpl AND a.privilege_type = 'EXECUTE' LOOP
    EXECUTE format('GRANT EXECUTE ON ROUTINE %s TO %I', r.fn, new_role);
  END LOOP;
  EXECUTE format('DROP OWNED BY %I', template_role);
  EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database());
  EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO %I, %I', current_database(), app_role, new_role);
  EXECUTE format('ALTER ROLE %I IN DATABASE %I SET search_path = %I, tenantry_v', new_role, current_database(), new_face);
END
$fn$;
REVOKE ALL ON FUNCTION tenantry.fleet_adopt(name, name, name, integer, uuid, text) FROM PUBLIC;
