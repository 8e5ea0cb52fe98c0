-- tenantry catalog, version 4: per-tenant login roles, sealed credentials, servers, and
-- schema-per-tenant placement.

-- Secrets sealed with the master key (AES-256-GCM, see docs/security.md): tenant role
-- passwords (owner 'tenant:<id>'), server URLs (owner 'server:<name>'), the key check.
CREATE TABLE tenantry.credential (
  owner      text NOT NULL,
  field      text NOT NULL,
  sealed     text NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (owner, field)
);

-- PostgreSQL servers tenants can be placed on. 'main' is the catalog's own server; the URL of
-- any other is sealed in tenantry.credential (owner 'server:<name>', field 'url').
CREATE TABLE tenantry.server (
  name       text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_-]{0,62}$'),
  budget     integer CHECK (budget > 0),
  created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO tenantry.server (name) VALUES ('main');

ALTER TABLE tenantry.tenant
  ADD COLUMN schema_name name,
  ADD COLUMN database_name name,
  ADD CONSTRAINT tenant_server_fk FOREIGN KEY (server) REFERENCES tenantry.server (name);
UPDATE tenantry.tenant SET server = 'main' WHERE server IS NULL;
ALTER TABLE tenantry.tenant ALTER COLUMN server SET DEFAULT 'main', ALTER COLUMN server SET NOT NULL;

CREATE TRIGGER tenant_role_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenantry.tenant_role
  FOR EACH STATEMENT EXECUTE FUNCTION tenantry.announce_change();
CREATE TRIGGER server_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenantry.server
  FOR EACH STATEMENT EXECUTE FUNCTION tenantry.announce_change();

REVOKE ALL ON tenantry.credential, tenantry.server FROM PUBLIC;

-- Creates a schema tenant's copy of one multi-tenant table in its data schema: same columns,
-- defaults, checks and indexes (LIKE … INCLUDING ALL), the tenant foreign key, forced row-level
-- security with the same policy (defence in depth), and its tenant-facing view in the tenant's
-- face schema. The tenant's role gets the view and column privileges on the copy, never the
-- data schema itself.
CREATE FUNCTION tenantry.provision_table(target_schema name, face_schema name, base regclass, tenant_column name,
                                         tenant_role name)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  relname  name;
  owner    name;
  copy     text;
  pol_expr text;
  grantees name[] := ARRAY['{{app_name}}']::name[];
  ix       record;
BEGIN
  SELECT c.relname, pg_get_userbyid(c.relowner) INTO relname, owner FROM pg_class c WHERE c.oid = base;
  copy := format('%I.%I', target_schema, relname);
  IF to_regclass(copy) IS NULL THEN
    EXECUTE format('CREATE TABLE %s (LIKE %s INCLUDING ALL)', copy, base);
    -- Other tenants' own indexes on the base table (tenantry_ix_…) name their tenant ids and
    -- columns in their predicates: they are not copied.
    FOR ix IN SELECT i.indexrelid::regclass AS name FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
              WHERE i.indrelid = copy::regclass AND c.relname LIKE 'tenantry\_ix\_%' LOOP
      EXECUTE format('DROP INDEX %s', ix.name);
    END LOOP;
    EXECUTE format('ALTER TABLE %s OWNER TO %I', copy, owner);
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = copy::regclass AND conname = 'tenantry_tenant_fk') THEN
    EXECUTE format('ALTER TABLE %s ADD CONSTRAINT tenantry_tenant_fk FOREIGN KEY (%I) REFERENCES tenantry.tenant (id)',
                   copy, tenant_column);
  END IF;
  EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET DEFAULT %s', copy, tenant_column, tenantry.tenant_expr('{{app_name}}'));
  EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', copy);
  EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', copy);
  pol_expr := format('%I = (SELECT %s)', tenant_column, tenantry.tenant_expr('{{app_name}}'));
  EXECUTE format('DROP POLICY IF EXISTS tenantry_isolation ON %s', copy);
  EXECUTE format('CREATE POLICY tenantry_isolation ON %s FOR ALL USING (%s) WITH CHECK (%s)', copy, pol_expr, pol_expr);
  EXECUTE format('REVOKE ALL ON %s FROM PUBLIC', copy);
  EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO {{maint}}', copy);
  PERFORM tenantry.grant_tenant_columns(copy::regclass, tenant_column, '{{app_name}}');
  IF tenant_role IS NOT NULL THEN
    PERFORM tenantry.grant_tenant_columns(copy::regclass, tenant_column, tenant_role);
    grantees := grantees || tenant_role;
  END IF;
  PERFORM set_config('tenantry.provisioning', 'on', true);
  PERFORM tenantry.create_facing_view(face_schema, copy::regclass, tenant_column, true, grantees);
END
$fn$;

-- Re-creates, inside target_schema, the foreign keys between multi-tenant tables (LIKE does not
-- copy foreign keys); keys to shared tables keep pointing at the shared table.
CREATE FUNCTION tenantry.provision_foreign_keys(target_schema name, base regclass) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  fk      record;
  actions constant jsonb := '{"a":"NO ACTION","r":"RESTRICT","c":"CASCADE","n":"SET NULL","d":"SET DEFAULT"}';
  copy    text;
BEGIN
  copy := format('%I.%I', target_schema, (SELECT relname FROM pg_class WHERE oid = base));
  FOR fk IN
    SELECT con.conname, con.confrelid, con.confdeltype, con.confupdtype,
           (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY k.ord) FROM unnest(con.conkey) WITH ORDINALITY k(n, ord)
              JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n) AS cols,
           (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY k.ord) FROM unnest(con.confkey) WITH ORDINALITY k(n, ord)
              JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n) AS ref_cols,
           EXISTS (SELECT 1 FROM tenantry.registered_table r JOIN pg_namespace n ON n.nspname = r.schema_name
                   JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = r.table_name
                   WHERE r.kind = 'multi_tenant' AND c.oid = con.confrelid) AS to_multi_tenant
    FROM pg_constraint con
    WHERE con.conrelid = base AND con.contype = 'f' AND con.confrelid <> 'tenantry.tenant'::regclass
  LOOP
    CONTINUE WHEN EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = copy::regclass AND conname = fk.conname);
    EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I FOREIGN KEY (%s) REFERENCES %s (%s) ON DELETE %s ON UPDATE %s',
      copy, fk.conname, fk.cols,
      CASE WHEN fk.to_multi_tenant
           THEN format('%I.%I', target_schema, (SELECT relname FROM pg_class WHERE oid = fk.confrelid))
           ELSE fk.confrelid::regclass::text END,
      fk.ref_cols, actions ->> fk.confdeltype::text, actions ->> fk.confupdtype::text);
  END LOOP;
END
$fn$;

-- Creates (or completes) a schema tenant's two schemas: the data schema with a copy of every
-- registered multi-tenant table (reachable by tenantry's roles only) and the face schema with
-- their tenant-facing views and, later, the tenant's own objects.
CREATE FUNCTION tenantry.provision_schema(target_schema name, face_schema name, tenant_role name) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  t record;
BEGIN
  EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I', target_schema);
  EXECUTE format('REVOKE ALL ON SCHEMA %I FROM PUBLIC', target_schema);
  EXECUTE format('GRANT USAGE ON SCHEMA %I TO {{app}}, {{maint}}', target_schema);
  EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I', face_schema);
  EXECUTE format('REVOKE ALL ON SCHEMA %I FROM PUBLIC', face_schema);
  EXECUTE format('GRANT USAGE ON SCHEMA %I TO {{maint}}', face_schema);
  EXECUTE format('GRANT USAGE, CREATE ON SCHEMA %I TO {{app}}', face_schema);
  IF tenant_role IS NOT NULL THEN
    EXECUTE format('GRANT USAGE, CREATE ON SCHEMA %I TO %I', face_schema, tenant_role);
  END IF;
  FOR t IN SELECT format('%I.%I', schema_name, table_name)::regclass AS base, tenant_column
           FROM tenantry.registered_table WHERE kind = 'multi_tenant' ORDER BY schema_name, table_name
  LOOP
    PERFORM tenantry.provision_table(target_schema, face_schema, t.base, t.tenant_column, tenant_role);
  END LOOP;
  FOR t IN SELECT format('%I.%I', schema_name, table_name)::regclass AS base
           FROM tenantry.registered_table WHERE kind = 'multi_tenant'
  LOOP
    PERFORM tenantry.provision_foreign_keys(target_schema, t.base);
  END LOOP;
END
$fn$;

REVOKE ALL ON FUNCTION tenantry.provision_table(name, name, regclass, name, name),
  tenantry.provision_foreign_keys(name, regclass), tenantry.provision_schema(name, name, name) FROM PUBLIC;
