-- tenantry.clone_schema as of catalog version 27 (migration 025 has its earlier form): a new
-- schema tenant's data schema and face schema, cloned from the template schema (docs/fleet.md).
-- Every look-up of a registered table, its template and its copy goes through to_regclass (one
-- index probe) and sequences are found through pg_sequence: joining pg_class by name matched
-- every tenant's copy of the table, so each clone got slower with the number of tenants. The
-- tenant is found by the uuid in the schema's name (version 29; matching each tenant's name for
-- its schema scanned the tenant table: ≈ 28 ms per clone at 100,000 tenants).
-- Placeholders as in the catalog migrations.
CREATE OR REPLACE FUNCTION tenantry.clone_schema(target_schema name, face_schema name, tenant_role name) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  t        record;
  v        bigint;
  grantees text := '{{app}}' || CASE WHEN tenant_role IS NULL THEN '' ELSE ', ' || quote_ident(tenant_role) END;
  seqs     boolean := EXISTS (SELECT 1 FROM pg_sequence s JOIN pg_class q ON q.oid = s.seqrelid
                              WHERE q.relnamespace = to_regnamespace('tenantry_template'));
  replica  text := current_setting('session_replication_role');
  expr     text := tenantry.tenant_expr('{{app_name}}');
  script   text;
  rel      text;
BEGIN
  PERFORM pg_advisory_xact_lock_shared(7303446191);
  -- event triggers guard tenant sessions' DDL: this operator's clone skips them (and adds the write guard itself;
  -- an operator who may not skip them gets it from the event trigger first, hence OR REPLACE below)
  BEGIN
    PERFORM set_config('session_replication_role', 'replica', true);
  EXCEPTION WHEN insufficient_privilege THEN NULL;
  END;
  SELECT m.version INTO v FROM tenantry.migration_template m WHERE m.name = 'schema';
  EXECUTE format('CREATE SCHEMA IF NOT EXISTS %1$I; REVOKE ALL ON SCHEMA %1$I FROM PUBLIC; GRANT USAGE ON SCHEMA %1$I TO {{app}}, {{maint}};'
                 'CREATE SCHEMA IF NOT EXISTS %2$I; REVOKE ALL ON SCHEMA %2$I FROM PUBLIC; GRANT USAGE ON SCHEMA %2$I TO {{maint}};'
                 'GRANT USAGE, CREATE ON SCHEMA %2$I TO %3$s;'
                 'ALTER DEFAULT PRIVILEGES IN SCHEMA %1$I GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {{maint}};'
                 'ALTER DEFAULT PRIVILEGES IN SCHEMA %2$I GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO %3$s',
                 target_schema, face_schema, grantees);
  -- Copies that already exist (a half-made schema being completed): secured as before.
  FOR t IN
    SELECT r.table_name, r.tenant_column, pg_get_userbyid(b.relowner) AS owner, c.oid::regclass AS copy
    FROM tenantry.registered_table r
    JOIN pg_class b ON b.oid = to_regclass(format('%I.%I', r.schema_name, r.table_name))
    JOIN pg_class c ON c.oid = to_regclass(format('%I.%I', target_schema, r.table_name))
    WHERE r.kind = 'multi_tenant' ORDER BY r.schema_name, r.table_name
  LOOP
    PERFORM tenantry.secure_copy(t.copy, face_schema, t.tenant_column, tenant_role, false, seqs, t.owner, true);
  END LOOP;
  -- The new copies: one script, built by one query. Per table, in 019's order: the copy
  -- (copy_table: LIKE, its keys and unique/exclusion constraints, its other indexes but tenants'
  -- own), then secure_copy's template sequences, tenant column default, forced row-level
  -- security and owner, write guard, policy, column grants and face view.
  WITH src AS MATERIALIZED (
    SELECT r.schema_name, r.table_name, r.tenant_column, pg_get_userbyid(b.relowner) AS owner,
           CASE WHEN tpl.oid IS NOT NULL AND tenantry.column_shape(tpl.oid) = tenantry.column_shape(b.oid)
                THEN tpl.oid ELSE b.oid END AS src,
           format('%I.%I', target_schema, r.table_name) AS copy,
           format('%I.%I', face_schema, r.table_name) AS face
    FROM tenantry.registered_table r
    JOIN pg_class b ON b.oid = to_regclass(format('%I.%I', r.schema_name, r.table_name))
    LEFT JOIN pg_class tpl ON tpl.oid = to_regclass(format('tenantry_template.%I', r.table_name))
    WHERE r.kind = 'multi_tenant' AND to_regclass(format('%I.%I', target_schema, r.table_name)) IS NULL
  )
  SELECT string_agg(
           format('CREATE TABLE %s (LIKE %s INCLUDING ALL EXCLUDING INDEXES);', s.copy, s.src::regclass)
           || format('ALTER TABLE %s %sALTER COLUMN %I SET DEFAULT %s, ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;',
                     s.copy, (SELECT string_agg(format('ADD CONSTRAINT %I %s, ', con.conname, pg_get_constraintdef(con.oid)), '' ORDER BY con.oid)
                              FROM pg_constraint con WHERE con.conrelid = s.src AND con.contype IN ('p', 'u', 'x')),
                     s.tenant_column, expr)
           || coalesce((SELECT string_agg(format('CREATE %sINDEX %I ON %s%s;', CASE WHEN i.indisunique THEN 'UNIQUE ' ELSE '' END,
                                                 c.relname, s.copy, substring(pg_get_indexdef(i.indexrelid) FROM ' USING .*')), '' ORDER BY i.indexrelid)
                        FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                        WHERE i.indrelid = s.src
                          AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = s.src AND k.conindid = i.indexrelid)
                          -- (tenants' own indexes name their tenant ids: never copied to another tenant)
                          AND c.relname NOT LIKE 'tenantry\_ix\_%'), '')
           || coalesce((SELECT string_agg(
                          format('CREATE SEQUENCE IF NOT EXISTS %I.%I AS %s INCREMENT %s MINVALUE %s MAXVALUE %s START %s CACHE %s %sCYCLE;',
                                 target_schema, q.relname, format_type(p.seqtypid, NULL), p.seqincrement, p.seqmin, p.seqmax,
                                 p.seqstart, p.seqcache, CASE WHEN p.seqcycle THEN '' ELSE 'NO ' END)
                          || format('ALTER SEQUENCE %I.%I OWNED BY %s.%I;', target_schema, q.relname, s.copy, a.attname)
                          || format('ALTER TABLE %s ALTER COLUMN %I SET DEFAULT nextval(%L::regclass);', s.copy, a.attname,
                                    format('%I.%I', target_schema, q.relname))
                          || format('GRANT USAGE, SELECT ON SEQUENCE %I.%I TO {{maint}}, %s;', target_schema, q.relname, grantees), '')
                        FROM pg_attrdef ad JOIN pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum
                        JOIN pg_depend d ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid AND d.refclassid = 'pg_class'::regclass
                        JOIN pg_class q ON q.oid = d.refobjid AND q.relkind = 'S' AND q.relnamespace = to_regnamespace('tenantry_template')
                        JOIN pg_sequence p ON p.seqrelid = q.oid
                        WHERE ad.adrelid = s.src AND seqs AND target_schema <> 'tenantry_template'), '')
           || CASE WHEN s.owner <> current_user THEN format('ALTER TABLE %s OWNER TO %I;', s.copy, s.owner) ELSE '' END
           || format('CREATE OR REPLACE TRIGGER tenantry_guard_write BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON %s
                      FOR EACH STATEMENT EXECUTE FUNCTION tenantry.guard_write();', s.copy)
           || format('CREATE POLICY tenantry_isolation ON %1$s FOR ALL USING (%2$s) WITH CHECK (%2$s);', s.copy,
                     format('%I = (SELECT %s)', s.tenant_column, expr))
           || (SELECT format('GRANT SELECT (%1$s), INSERT (%1$s), UPDATE (%1$s), DELETE ON %2$s TO %3$s;', cols.c, s.copy, grantees)
                      || format('CREATE OR REPLACE VIEW %s WITH (security_invoker = true, security_barrier = true) AS SELECT %s FROM %s;',
                                s.face, cols.vc, s.copy)
               FROM (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) AS c,
                            string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) FILTER (WHERE a.attname <> 'tenantry_ext') AS vc
                     FROM pg_attribute a WHERE a.attrelid = s.src AND a.attnum > 0 AND NOT a.attisdropped AND a.attname <> s.tenant_column) cols),
           E'\n' ORDER BY s.schema_name, s.table_name)
  INTO script
  FROM src s;
  IF script IS NOT NULL THEN
    PERFORM set_config('tenantry.provisioning', 'on', true);
    EXECUTE script;
  END IF;
  -- the foreign keys between the copies (LIKE does not copy them)
  FOR t IN
    WITH pair AS MATERIALIZED (
      SELECT r.schema_name, r.table_name, format('%I.%I', target_schema, r.table_name)::regclass AS copy,
             CASE WHEN tpl.oid IS NOT NULL AND tenantry.column_shape(tpl.oid) = tenantry.column_shape(b.oid)
                  THEN tpl.oid ELSE b.oid END::regclass AS src
      FROM tenantry.registered_table r
      JOIN pg_class b ON b.oid = to_regclass(format('%I.%I', r.schema_name, r.table_name))
      LEFT JOIN pg_class tpl ON tpl.oid = to_regclass(format('tenantry_template.%I', r.table_name))
      WHERE r.kind = 'multi_tenant')
    SELECT p.src, p.copy FROM pair p
    WHERE EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = p.src AND k.contype = 'f')
    ORDER BY p.schema_name, p.table_name
  LOOP
    PERFORM tenantry.clone_foreign_keys(t.src, t.copy, target_schema);
  END LOOP;
  -- the runtime tables (docs/runtime.md), with the write guard the event trigger would have added
  PERFORM tenantry.runtime_install(target_schema, 'tenantry_', '{{app_name}}', '{{maint_name}}', '{{owner_name}}');
  FOREACH rel IN ARRAY ARRAY['tenantry_job', 'tenantry_event', 'tenantry_event_head', 'tenantry_id_counter'] LOOP
    PERFORM tenantry.guard_table(format('%I.%I', target_schema, rel)::regclass);
  END LOOP;
  PERFORM set_config('session_replication_role', replica, true);
  v := coalesce(v, (SELECT max(version) FROM tenantry.app_migration), 0);
  INSERT INTO tenantry.tenant_migration (tenant_id, version)
  SELECT tt.id, v FROM tenantry.tenant tt
  WHERE tt.uuid = CASE WHEN target_schema ~ '^tenantry_t_[0-9a-f]{32}$' THEN substr(target_schema, 12)::uuid END
  ON CONFLICT (tenant_id) DO UPDATE SET version = EXCLUDED.version, failed_version = NULL, error = NULL, updated_at = now();
  RETURN v;
END
$fn$;
REVOKE ALL ON FUNCTION tenantry.clone_schema(name, name, name) FROM PUBLIC;
