-- runs as: installer (creating functions as the owner trips 017's routine guard, as in 019)
-- tenantry catalog, version 25: faster schema-tenant creation (issue #10's `provision` goal).
--
-- tenantry.clone_schema (019) secured each copy with a dozen catalog look-ups and single
-- statements per table (copy_table, secure_copy, guard_table), and the runtime tables were
-- added afterwards by a catalog trigger whose DDL ran every event trigger (the write guard's
-- among them). Now:
--   * clone_schema reads what it copies in one query and runs one script: per table CREATE
--     TABLE … (LIKE … INCLUDING ALL EXCLUDING INDEXES), one ALTER TABLE (constraints, tenant
--     column default, forced row-level security), the indexes under their template names, the
--     write guard, the isolation policy, the column grants and the tenant-facing view — the same
--     objects, privileges and names as before, without the per-table look-ups;
--   * runtime_install builds its tables, policies and grants as one script too;
--   * clone_schema installs the runtime tables itself, inside its replica window (event triggers
--     skipped, so it adds their write guard itself, as the event trigger did), and the catalog
--     trigger only installs them when the schema lacks them (schemas made some other way).
-- A copy that already exists (completing a half-made schema) still goes through secure_copy.

CREATE OR REPLACE FUNCTION tenantry.runtime_install(target_schema name, prefix text, app_role name,
                                                    maint_role name, owner_role name)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  expr   text := tenantry.tenant_expr(app_role);
  policy text := format('tenant_id = (SELECT %s)', tenantry.tenant_expr(app_role));
  fk     text := CASE WHEN target_schema = 'tenantry' THEN 'REFERENCES tenantry.tenant (id) ON DELETE CASCADE' ELSE '' END;
  tbl    text;
  rel    text;
  script text;
BEGIN
  IF prefix !~ '^[a-z_]{0,20}$' THEN
    RAISE EXCEPTION 'tenantry.runtime_install: bad prefix %', prefix USING ERRCODE = '22023';
  END IF;
  -- concurrent installers of one schema (first use in two processes) wait for each other
  PERFORM pg_advisory_xact_lock(hashtext('tenantry.runtime_install'), hashtext(target_schema));
  script := format($$CREATE TABLE IF NOT EXISTS %I.%I (
      tenant_id    integer NOT NULL DEFAULT %s %s,
      id           uuid NOT NULL DEFAULT gen_random_uuid(),
      name         text NOT NULL,
      payload      jsonb NOT NULL DEFAULT 'null',
      state        text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'failed', 'cancelled')),
      run_at       timestamptz NOT NULL DEFAULT now(),
      attempts     integer NOT NULL DEFAULT 0,
      max_attempts integer NOT NULL DEFAULT 5 CHECK (max_attempts BETWEEN 1 AND 1000),
      lease_token  uuid,
      lease_until  timestamptz,
      last_error   text,
      created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
      updated_at   timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (tenant_id, id));$$, target_schema, prefix || 'job', expr, fk)
    || format('CREATE INDEX IF NOT EXISTS %I ON %I.%I (tenant_id, run_at, created_at) WHERE state = ''queued'';',
              prefix || 'job_due', target_schema, prefix || 'job')
    || format('CREATE INDEX IF NOT EXISTS %I ON %I.%I (tenant_id, lease_until) WHERE state = ''running'';',
              prefix || 'job_running', target_schema, prefix || 'job')
    || format($$CREATE TABLE IF NOT EXISTS %I.%I (
      tenant_id  integer NOT NULL DEFAULT %s %s,
      position   bigint NOT NULL CHECK (position > 0),
      type       text NOT NULL,
      payload    jsonb NOT NULL DEFAULT 'null',
      created_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (tenant_id, position));$$, target_schema, prefix || 'event', expr, fk)
    || format($$CREATE TABLE IF NOT EXISTS %I.%I (
      tenant_id integer NOT NULL DEFAULT %s %s,
      position  bigint NOT NULL,
      PRIMARY KEY (tenant_id));$$, target_schema, prefix || 'event_head', expr, fk)
    || format($$CREATE TABLE IF NOT EXISTS %I.%I (
      tenant_id integer NOT NULL DEFAULT %s %s,
      entity    text NOT NULL CHECK (entity ~ '^[A-Za-z][A-Za-z0-9_.:-]{0,62}$'),
      value     bigint NOT NULL,
      PRIMARY KEY (tenant_id, entity));$$, target_schema, prefix || 'id_counter', expr, fk);
  FOREACH tbl IN ARRAY ARRAY['job', 'event', 'event_head', 'id_counter'] LOOP
    rel := format('%I.%I', target_schema, prefix || tbl);
    script := script
      || format('ALTER TABLE %s %sENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;', rel,
                CASE WHEN owner_role IS NOT NULL THEN format('OWNER TO %I, ', owner_role) ELSE '' END)
      || format('DROP POLICY IF EXISTS tenantry_isolation ON %s;', rel)
      || format('CREATE POLICY tenantry_isolation ON %s FOR ALL USING (%s) WITH CHECK (%s);', rel, policy, policy)
      || format('REVOKE ALL ON %s FROM PUBLIC;', rel)
      || format('GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO %I%s;', rel, app_role,
                CASE WHEN maint_role IS NOT NULL THEN format(', %I', maint_role) ELSE '' END);
  END LOOP;
  IF owner_role IS NOT NULL AND target_schema <> 'tenantry' THEN
    -- tenantry.next_id() runs as the owner and reaches a schema tenant's counters
    script := script || format('GRANT USAGE ON SCHEMA %I TO %I;', target_schema, owner_role);
  END IF;
  EXECUTE script;
END
$fn$;
REVOKE ALL ON FUNCTION tenantry.runtime_install(name, text, name, name, name) FROM PUBLIC;

-- A schema tenant gets its runtime tables with its data schema (tenant creation sets schema_name);
-- tenantry.clone_schema has installed them already.
CREATE OR REPLACE FUNCTION tenantry.runtime_schema_tenant() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
  IF (SELECT count(*) FROM unnest(ARRAY['tenantry_job', 'tenantry_event', 'tenantry_event_head', 'tenantry_id_counter']) r
      WHERE to_regclass(format('%I.%I', NEW.schema_name, r)) IS NOT NULL) < 4 THEN
    PERFORM tenantry.runtime_install(NEW.schema_name, 'tenantry_', '{{app_name}}', '{{maint_name}}', '{{owner_name}}');
  END IF;
  RETURN NULL;
END
$fn$;
REVOKE ALL ON FUNCTION tenantry.runtime_schema_tenant() FROM PUBLIC;

-- 019's clone_schema, the new copies built by one script (see the top of this file).
CREATE OR REPLACE FUNCTION tenantry.clone_schema(target_schema name, face_schema name, tenant_role name) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  t        record;
  v        bigint;
  grantees text := '{{app}}' || CASE WHEN tenant_role IS NULL THEN '' ELSE ', ' || quote_ident(tenant_role) END;
  seqs     boolean := EXISTS (SELECT 1 FROM pg_class WHERE relnamespace = to_regnamespace('tenantry_template') AND relkind = 'S');
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
    JOIN pg_namespace bn ON bn.nspname = r.schema_name
    JOIN pg_class b ON b.relnamespace = bn.oid AND b.relname = r.table_name
    JOIN pg_class c ON c.oid = to_regclass(format('%I.%I', target_schema, r.table_name))
    WHERE r.kind = 'multi_tenant' ORDER BY r.schema_name, r.table_name
  LOOP
    PERFORM tenantry.secure_copy(t.copy, face_schema, t.tenant_column, tenant_role, false, seqs, t.owner, true);
  END LOOP;
  -- The new copies: one script, built by one query. Per table, in 019's order: the copy
  -- (copy_table: LIKE, its keys and unique/exclusion constraints, its other indexes but tenants'
  -- own), then secure_copy's template sequences, tenant column default, forced row-level
  -- security and owner, write guard, policy, column grants and face view.
  WITH src AS (
    SELECT r.schema_name, r.table_name, r.tenant_column, pg_get_userbyid(b.relowner) AS owner,
           CASE WHEN tpl.oid IS NOT NULL AND tenantry.column_shape(tpl.oid) = tenantry.column_shape(b.oid)
                THEN tpl.oid ELSE b.oid END AS src,
           format('%I.%I', target_schema, r.table_name) AS copy,
           format('%I.%I', face_schema, r.table_name) AS face
    FROM tenantry.registered_table r
    JOIN pg_namespace bn ON bn.nspname = r.schema_name
    JOIN pg_class b ON b.relnamespace = bn.oid AND b.relname = r.table_name
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
      JOIN pg_namespace bn ON bn.nspname = r.schema_name
      JOIN pg_class b ON b.relnamespace = bn.oid AND b.relname = r.table_name
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
  SELECT tt.id, v FROM tenantry.tenant tt WHERE 'tenantry_t_' || replace(tt.uuid::text, '-', '') = target_schema
  ON CONFLICT (tenant_id) DO UPDATE SET version = EXCLUDED.version, failed_version = NULL, error = NULL, updated_at = now();
  RETURN v;
END
$fn$;
REVOKE ALL ON FUNCTION tenantry.clone_schema(name, name, name) FROM PUBLIC;
