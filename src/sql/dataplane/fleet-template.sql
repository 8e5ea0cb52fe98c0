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
-- the application role and the tenant's role. The privileges are granted by one script (one
-- GRANT per set of objects with the same privileges), with triggers skipped
-- (session_replication_role = replica): the event triggers guard tenant sessions, and the
-- foreign-key checks of the stand-in's row — which no row of the template references, its
-- tables being empty — would plan one query per table in this new database's cold backend
-- (≈ 6 ms of a database tenant's creation).
CREATE OR REPLACE FUNCTION tenantry.fleet_adopt(template_role name, new_role name, app_role name, new_id integer,
                                                new_uuid uuid, new_name text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  old_id   integer;
  old_face name;
  new_face name := 'tenantry_f_' || replace(new_uuid::text, '-', '');
  tpl      oid := template_role::regrole;
  replica  text := current_setting('session_replication_role');
  script   text;
BEGIN
  BEGIN
    PERFORM set_config('session_replication_role', 'replica', true);
  EXCEPTION WHEN insufficient_privilege THEN NULL;
  END;
  SELECT tr.tenant_id INTO old_id FROM tenantry.tenant_role tr WHERE tr.role_name = template_role;
  SELECT 'tenantry_f_' || replace(t.uuid::text, '-', '') INTO old_face FROM tenantry.tenant t WHERE t.id = old_id;
  INSERT INTO tenantry.tenant (id, uuid, name) VALUES (new_id, new_uuid, new_name);
  UPDATE tenantry.tenant_role tr SET role_name = new_role, tenant_id = new_id WHERE tr.role_name = template_role;
  DELETE FROM tenantry.tenant WHERE id = old_id;
  EXECUTE format('ALTER SCHEMA %I RENAME TO %I', old_face, new_face);
  WITH rel AS (
    -- per relation: its privileges and its column privileges, as one privilege list
    SELECT c.oid, CASE WHEN c.relkind = 'S' THEN 'SEQUENCE' ELSE 'TABLE' END AS kind,
           concat_ws(', ',
             (SELECT string_agg(a.privilege_type, ', ' ORDER BY a.privilege_type)
              FROM aclexplode(c.relacl) a WHERE a.grantee = tpl),
             (SELECT string_agg(format('%s (%s)', p.privilege_type, p.cols), ', ' ORDER BY p.privilege_type)
              FROM (SELECT a.privilege_type, string_agg(quote_ident(t.attname), ', ' ORDER BY t.attnum) AS cols
                    FROM pg_attribute t CROSS JOIN LATERAL aclexplode(t.attacl) a
                    WHERE t.attrelid = c.oid AND a.grantee = tpl AND NOT t.attisdropped
                    GROUP BY a.privilege_type) p)) AS privs
    FROM pg_class c
    WHERE EXISTS (SELECT 1 FROM aclexplode(c.relacl) a WHERE a.grantee = tpl)
       OR EXISTS (SELECT 1 FROM pg_attribute t CROSS JOIN LATERAL aclexplode(t.attacl) a
                  WHERE t.attrelid = c.oid AND t.attacl IS NOT NULL AND a.grantee = tpl AND NOT t.attisdropped)
  )
  SELECT concat(
           (SELECT string_agg(format('GRANT %s ON %s %s TO %I;', g.privs, g.kind, g.rels, new_role), '')
            FROM (SELECT privs, kind, string_agg(oid::regclass::text, ', ' ORDER BY oid) AS rels FROM rel GROUP BY privs, kind) g),
           (SELECT string_agg(format('GRANT %s ON SCHEMA %s TO %I;', g.privs, g.nsps, new_role), '')
            FROM (SELECT privs, string_agg(quote_ident(nspname), ', ' ORDER BY nspname) AS nsps
                  FROM (SELECT n.nspname, string_agg(a.privilege_type, ', ' ORDER BY a.privilege_type) AS privs
                        FROM pg_namespace n CROSS JOIN LATERAL aclexplode(n.nspacl) a
                        WHERE a.grantee = tpl GROUP BY n.nspname) s GROUP BY privs) g),
           (SELECT format('GRANT EXECUTE ON ROUTINE %s TO %I;', string_agg(f.fn::text, ', ' ORDER BY f.fn), new_role)
            FROM (SELECT DISTINCT p.oid::regprocedure AS fn
                  FROM pg_proc p CROSS JOIN LATERAL aclexplode(p.proacl) a
                  WHERE a.grantee = tpl AND a.privilege_type = 'EXECUTE') f
            HAVING count(*) > 0))
  INTO script;
  EXECUTE script || format('DROP OWNED BY %I;', template_role)
    || format('REVOKE ALL ON DATABASE %I FROM PUBLIC;', current_database())
    || format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO %I, %I;', current_database(), app_role, new_role)
    || format('ALTER ROLE %I IN DATABASE %I SET search_path = %I, tenantry_v', new_role, current_database(), new_face);
  PERFORM set_config('session_replication_role', replica, true);
END
$fn$;
REVOKE ALL ON FUNCTION tenantry.fleet_adopt(name, name, name, integer, uuid, text) FROM PUBLIC;
