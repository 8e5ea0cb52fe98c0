-- runs as: installer (creating functions as the owner trips 017's routine guard; owners are set below)
-- tenantry catalog, version 19: fleet operations (docs/fleet.md) — the application's own
-- migrations across the shared tables and every schema and database tenant (`tenantry
-- migrate`), and new tenants provisioned from templates kept at the current migration version.

-- Migrations applied to the catalog database (shared and base tables): the highest is current.
CREATE TABLE tenantry.app_migration (
  version     bigint PRIMARY KEY CHECK (version > 0),
  name        text NOT NULL,
  checksum    text NOT NULL,
  applied_at  timestamptz NOT NULL DEFAULT now(),
  duration_ms integer
);

-- The version each schema and database tenant is at, and its last failure. A database tenant
-- also records its version inside its own database (tenantry.fleet_version), in the same
-- transaction as the migration: that record wins when the two disagree.
CREATE TABLE tenantry.tenant_migration (
  tenant_id      integer PRIMARY KEY REFERENCES tenantry.tenant (id) ON DELETE CASCADE,
  version        bigint NOT NULL DEFAULT 0,
  failed_version bigint,
  error          text,
  updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Templates new tenants are cloned from: 'schema' (schema tenantry_template) and 'database:<server>'
-- (a template database per server), with the registry fingerprint they were last aligned with.
CREATE TABLE tenantry.migration_template (
  name        text PRIMARY KEY,
  server      text REFERENCES tenantry.server (name) ON DELETE CASCADE,
  object_name name NOT NULL,
  version     bigint NOT NULL DEFAULT 0,
  fingerprint text,
  updated_at  timestamptz NOT NULL DEFAULT now()
);

-- A database cloned from a template, awaiting its tenant row (created after it): its version.
CREATE TABLE tenantry.provisioned_database (database_name name PRIMARY KEY, version bigint NOT NULL,
                                            created_at timestamptz NOT NULL DEFAULT now());
REVOKE ALL ON tenantry.app_migration, tenantry.tenant_migration, tenantry.migration_template,
  tenantry.provisioned_database FROM PUBLIC;

-- Tenants that existed before fleet migrations: at version 0 (nothing applied yet).
INSERT INTO tenantry.tenant_migration (tenant_id, version) SELECT id, 0 FROM tenantry.tenant WHERE isolation <> 'shared';

-- A tenant row that names its database or schema gets its version: a database's from the template it
-- was cloned from; otherwise (built some other way, from the base tables) the shared tables' version.
CREATE FUNCTION tenantry.record_tenant_version() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  v bigint;
BEGIN
  IF NEW.isolation = 'database' AND NEW.database_name IS NOT NULL THEN
    DELETE FROM tenantry.provisioned_database p WHERE p.database_name = NEW.database_name RETURNING p.version INTO v;
  ELSIF NEW.isolation <> 'schema' OR NEW.schema_name IS NULL THEN
    RETURN NULL;
  END IF;
  INSERT INTO tenantry.tenant_migration (tenant_id, version)
  VALUES (NEW.id, coalesce(v, (SELECT max(version) FROM tenantry.app_migration), 0))
  ON CONFLICT (tenant_id) DO UPDATE SET version = EXCLUDED.version, failed_version = NULL, error = NULL, updated_at = now()
  WHERE v IS NOT NULL;
  RETURN NULL;
END
$fn$;
CREATE TRIGGER tenant_fleet_version AFTER INSERT OR UPDATE OF database_name, schema_name ON tenantry.tenant
  FOR EACH ROW EXECUTE FUNCTION tenantry.record_tenant_version();

-- A table's columns (names, types, in order; not tenantry_ext): does a template copy match its base?
CREATE FUNCTION tenantry.column_shape(rel regclass) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT string_agg(quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum)
  FROM pg_attribute a
  WHERE a.attrelid = rel AND a.attnum > 0 AND NOT a.attisdropped AND a.attname <> 'tenantry_ext'
$$;

-- Re-creates on `copy` the foreign keys of `src` (LIKE does not): keys to a registered multi-tenant table,
-- or to a sibling in the template, point at target_schema's table of that name; others (shared) stay.
CREATE FUNCTION tenantry.clone_foreign_keys(src regclass, copy regclass, target_schema name) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  fk      record;
  actions constant jsonb := '{"a":"NO ACTION","r":"RESTRICT","c":"CASCADE","n":"SET NULL","d":"SET DEFAULT"}';
BEGIN
  FOR fk IN
    SELECT con.conname, con.confrelid, con.confdeltype, con.confupdtype, con.condeferrable, con.condeferred,
           (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY k.ord) FROM unnest(con.conkey) WITH ORDINALITY k(n, ord)
              JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n) AS cols,
           (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY k.ord) FROM unnest(con.confkey) WITH ORDINALITY k(n, ord)
              JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n) AS ref_cols,
           ((rc.relnamespace = sc.relnamespace AND sc.relnamespace = to_regnamespace('tenantry_template')) OR EXISTS (
              SELECT 1 FROM tenantry.registered_table r JOIN pg_namespace n ON n.nspname = r.schema_name
              WHERE r.kind = 'multi_tenant' AND n.oid = rc.relnamespace AND r.table_name = rc.relname)) AS sibling,
           rc.relname AS ref_name
    FROM pg_constraint con
    JOIN pg_class rc ON rc.oid = con.confrelid
    JOIN pg_class sc ON sc.oid = con.conrelid
    WHERE con.conrelid = src AND con.contype = 'f' AND con.confrelid <> 'tenantry.tenant'::regclass
  LOOP
    CONTINUE WHEN EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = copy AND conname = fk.conname);
    EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I FOREIGN KEY (%s) REFERENCES %s (%s) ON DELETE %s ON UPDATE %s%s',
      copy, fk.conname, fk.cols,
      CASE WHEN fk.sibling THEN format('%I.%I', target_schema, fk.ref_name) ELSE fk.confrelid::regclass::text END,
      fk.ref_cols, actions ->> fk.confdeltype::text, actions ->> fk.confupdtype::text,
      CASE WHEN fk.condeferred THEN ' DEFERRABLE INITIALLY DEFERRED' WHEN fk.condeferrable THEN ' DEFERRABLE' ELSE '' END);
  END LOOP;
END
$fn$;

-- target_schema's copy of `src`: LIKE … INCLUDING ALL, but indexes (and their constraints) keep their
-- source's names (LIKE names them after the columns; migrations name them: DROP INDEX customer_by_name).
CREATE FUNCTION tenantry.copy_table(src regclass, target_schema name) RETURNS regclass
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  copy text := format('%I.%I', target_schema, (SELECT relname FROM pg_class WHERE oid = src));
  r    record;
  cons text;
BEGIN
  EXECUTE format('CREATE TABLE %s (LIKE %s INCLUDING ALL EXCLUDING INDEXES)', copy, src);
  SELECT string_agg(format('ADD CONSTRAINT %I %s', con.conname, pg_get_constraintdef(con.oid)), ', ' ORDER BY con.oid) INTO cons
  FROM pg_constraint con WHERE con.conrelid = src AND con.contype IN ('p', 'u', 'x');
  IF cons IS NOT NULL THEN
    EXECUTE format('ALTER TABLE %s %s', copy, cons);
  END IF;
  FOR r IN SELECT c.relname, i.indisunique, substring(pg_get_indexdef(i.indexrelid) FROM ' USING .*') AS def
           FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
           WHERE i.indrelid = src AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.conrelid = src)
             -- (tenants' own indexes name their tenant ids: never copied to another tenant)
             AND c.relname NOT LIKE 'tenantry\_ix\_%'
           ORDER BY i.indexrelid LOOP
    EXECUTE format('CREATE %sINDEX %I ON %s%s', CASE WHEN r.indisunique THEN 'UNIQUE ' ELSE '' END, r.relname, copy, r.def);
  END LOOP;
  RETURN copy::regclass;
END
$fn$;

-- Brings schema tenantry_template in line with the registry: a copy (LIKE … INCLUDING ALL) of
-- every registered multi-tenant table it lacks, with their foreign keys. Run by `tenantry
-- migrate` under the template lock, while the template is at the base tables' version.
CREATE FUNCTION tenantry.sync_schema_template() RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  t     record;
  added integer := 0;
BEGIN
  EXECUTE 'CREATE SCHEMA IF NOT EXISTS tenantry_template';
  EXECUTE 'REVOKE ALL ON SCHEMA tenantry_template FROM PUBLIC';
  FOR t IN SELECT format('%I.%I', r.schema_name, r.table_name)::regclass AS base, r.table_name
           FROM tenantry.registered_table r WHERE r.kind = 'multi_tenant' ORDER BY r.schema_name, r.table_name
  LOOP
    CONTINUE WHEN to_regclass(format('tenantry_template.%I', t.table_name)) IS NOT NULL;
    PERFORM tenantry.copy_table(t.base, 'tenantry_template');
    added := added + 1;
  END LOOP;
  FOR t IN SELECT format('%I.%I', r.schema_name, r.table_name)::regclass AS base, r.table_name
           FROM tenantry.registered_table r WHERE r.kind = 'multi_tenant'
  LOOP
    PERFORM tenantry.clone_foreign_keys(t.base, format('tenantry_template.%I', t.table_name)::regclass, 'tenantry_template');
  END LOOP;
  RETURN added;
END
$fn$;

-- Secures a schema tenant's copy like provision_table, without a foreign key to tenantry.tenant (20 × tenants
-- RI triggers there; the policy pins rows anyway): tenant column default, forced RLS, write guard, column
-- privileges, tenant-facing view; template sequences become the copy's own. `defaulted`: the schemas'
-- default privileges already grant the maintenance role and the view's grantees.
CREATE FUNCTION tenantry.secure_copy(copy regclass, face_schema name, tenant_column name, tenant_role name, fresh boolean,
  template_sequences boolean DEFAULT true, owner name DEFAULT NULL, defaulted boolean DEFAULT false) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  s        record;
  rel      record;
  cols     text;
  vcols    text;
  expr     text := tenantry.tenant_expr('{{app_name}}');
  pol      text;
  grantees text := '{{app}}' || CASE WHEN tenant_role IS NULL THEN '' ELSE ', ' || quote_ident(tenant_role) END;
BEGIN
  SELECT c.relname, n.nspname, coalesce(owner, (SELECT pg_get_userbyid(b.relowner) FROM tenantry.registered_table r
     JOIN pg_namespace bn ON bn.nspname = r.schema_name JOIN pg_class b ON b.relnamespace = bn.oid AND b.relname = r.table_name
     WHERE r.table_name = c.relname AND r.kind = 'multi_tenant')) AS owner
  INTO rel FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = copy;
  FOR s IN
    SELECT a.attname, q.relname AS seq, format_type(p.seqtypid, NULL) AS typ, p.seqincrement, p.seqmin, p.seqmax,
           p.seqstart, p.seqcache, CASE WHEN p.seqcycle THEN '' ELSE 'NO ' END AS cycle
    FROM pg_attrdef ad JOIN pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum
    JOIN pg_depend d ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid AND d.refclassid = 'pg_class'::regclass
    JOIN pg_class q ON q.oid = d.refobjid AND q.relkind = 'S' AND q.relnamespace = to_regnamespace('tenantry_template')
    JOIN pg_sequence p ON p.seqrelid = q.oid
    WHERE ad.adrelid = copy AND rel.nspname <> 'tenantry_template' AND template_sequences
  LOOP
    EXECUTE format('CREATE SEQUENCE IF NOT EXISTS %I.%I AS %s INCREMENT %s MINVALUE %s MAXVALUE %s START %s CACHE %s %sCYCLE',
      rel.nspname, s.seq, s.typ, s.seqincrement, s.seqmin, s.seqmax, s.seqstart, s.seqcache, s.cycle);
    EXECUTE format('ALTER SEQUENCE %I.%I OWNED BY %s.%I', rel.nspname, s.seq, copy, s.attname);
    EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET DEFAULT nextval(%L::regclass)', copy, s.attname, format('%I.%I', rel.nspname, s.seq));
    EXECUTE format('GRANT USAGE, SELECT ON SEQUENCE %I.%I TO {{maint}}, %s', rel.nspname, s.seq, grantees);
  END LOOP;
  EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET DEFAULT %s, ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY%s', copy,
                 tenant_column, expr, CASE WHEN rel.owner <> current_user THEN format(', OWNER TO %I', rel.owner) ELSE '' END);
  PERFORM tenantry.guard_table(copy);
  pol := format('%I = (SELECT %s)', tenant_column, expr);
  IF NOT fresh THEN
    EXECUTE format('DROP POLICY IF EXISTS tenantry_isolation ON %s', copy);
    EXECUTE format('REVOKE ALL ON %s FROM PUBLIC', copy);
  END IF;
  EXECUTE format('CREATE POLICY tenantry_isolation ON %s FOR ALL USING (%s) WITH CHECK (%s)', copy, pol, pol);
  SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum),
         string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) FILTER (WHERE a.attname <> 'tenantry_ext')
  INTO cols, vcols
  FROM pg_attribute a WHERE a.attrelid = copy AND a.attnum > 0 AND NOT a.attisdropped AND a.attname <> tenant_column;
  IF NOT defaulted THEN EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO {{maint}}', copy); END IF;
  EXECUTE format('GRANT SELECT (%s), INSERT (%s), UPDATE (%s), DELETE ON %s TO %s', cols, cols, cols, copy, grantees);
  PERFORM set_config('tenantry.provisioning', 'on', true);
  EXECUTE format('CREATE OR REPLACE VIEW %I.%I WITH (security_invoker = true, security_barrier = true) AS SELECT %s FROM %s',
                 face_schema, rel.relname, vcols, copy);
  IF NOT defaulted THEN EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I.%I TO %s', face_schema, rel.relname, grantees); END IF;
END
$fn$;

-- Creates (or completes) a schema tenant's data and face schemas by cloning the template: a copy
-- of each registered multi-tenant table's template table — or of the base table, when the
-- template lacks it or its columns no longer match the base table's (changed by hand outside
-- `tenantry migrate`) — secured (secure_copy), then the foreign keys between the copies. Holds
-- the template lock (shared), records the tenant's version (the template's) and answers it.
CREATE FUNCTION tenantry.clone_schema(target_schema name, face_schema name, tenant_role name) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  t       record;
  v       bigint;
  copy    regclass;
  pairs   regclass[] := '{}';
  grantees text := '{{app}}' || CASE WHEN tenant_role IS NULL THEN '' ELSE ', ' || quote_ident(tenant_role) END;
  seqs    boolean := EXISTS (SELECT 1 FROM pg_class WHERE relnamespace = to_regnamespace('tenantry_template') AND relkind = 'S');
  replica text := current_setting('session_replication_role');
BEGIN
  PERFORM pg_advisory_xact_lock_shared(7303446191);
  -- event triggers guard tenant sessions' DDL: this operator's clone skips them (secure_copy adds the write guard)
  BEGIN
    PERFORM set_config('session_replication_role', 'replica', true);
  EXCEPTION WHEN insufficient_privilege THEN NULL;
  END;
  SELECT m.version INTO v FROM tenantry.migration_template m WHERE m.name = 'schema';
  EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I', target_schema);
  EXECUTE format('REVOKE ALL ON SCHEMA %I FROM PUBLIC', target_schema);
  EXECUTE format('GRANT USAGE ON SCHEMA %I TO {{app}}, {{maint}}', target_schema);
  EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I', face_schema);
  EXECUTE format('REVOKE ALL ON SCHEMA %I FROM PUBLIC', face_schema);
  EXECUTE format('GRANT USAGE ON SCHEMA %I TO {{maint}}', face_schema);
  EXECUTE format('GRANT USAGE, CREATE ON SCHEMA %I TO %s', face_schema, grantees);
  EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {{maint}}', target_schema);
  EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO %s', face_schema, grantees);
  FOR t IN
    SELECT r.table_name, r.tenant_column, pg_get_userbyid(b.relowner) AS owner,
           CASE WHEN tpl.oid IS NOT NULL AND tenantry.column_shape(tpl.oid) = tenantry.column_shape(b.oid)
                THEN tpl.oid::regclass ELSE b.oid::regclass END AS src
    FROM tenantry.registered_table r
    JOIN pg_namespace bn ON bn.nspname = r.schema_name
    JOIN pg_class b ON b.relnamespace = bn.oid AND b.relname = r.table_name
    LEFT JOIN pg_class tpl ON tpl.oid = to_regclass(format('tenantry_template.%I', r.table_name))
    WHERE r.kind = 'multi_tenant' ORDER BY r.schema_name, r.table_name
  LOOP
    copy := to_regclass(format('%I.%I', target_schema, t.table_name));
    PERFORM tenantry.secure_copy(coalesce(copy, tenantry.copy_table(t.src, target_schema)), face_schema, t.tenant_column,
                                 tenant_role, copy IS NULL, seqs, t.owner, true);
    pairs := pairs || t.src || format('%I.%I', target_schema, t.table_name)::regclass;
  END LOOP;
  FOR i IN 1 .. cardinality(pairs) / 2 LOOP
    CONTINUE WHEN NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = pairs[2 * i - 1] AND contype = 'f');
    PERFORM tenantry.clone_foreign_keys(pairs[2 * i - 1], pairs[2 * i], target_schema);
  END LOOP;
  PERFORM set_config('session_replication_role', replica, true);
  v := coalesce(v, (SELECT max(version) FROM tenantry.app_migration), 0);
  INSERT INTO tenantry.tenant_migration (tenant_id, version)
  SELECT tt.id, v FROM tenantry.tenant tt WHERE 'tenantry_t_' || replace(tt.uuid::text, '-', '') = target_schema
  ON CONFLICT (tenant_id) DO UPDATE SET version = EXCLUDED.version, failed_version = NULL, error = NULL, updated_at = now();
  RETURN v;
END
$fn$;

ALTER TABLE tenantry.app_migration OWNER TO {{owner}}; ALTER TABLE tenantry.tenant_migration OWNER TO {{owner}};
ALTER TABLE tenantry.migration_template OWNER TO {{owner}}; ALTER TABLE tenantry.provisioned_database OWNER TO {{owner}};
REVOKE ALL ON FUNCTION tenantry.record_tenant_version(), tenantry.column_shape(regclass),
  tenantry.clone_foreign_keys(regclass, regclass, name), tenantry.sync_schema_template(),
  tenantry.copy_table(regclass, name), tenantry.clone_schema(name, name, name),
  tenantry.secure_copy(regclass, name, name, name, boolean, boolean, name, boolean) FROM PUBLIC;
