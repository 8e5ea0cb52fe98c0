-- Shared by the catalog (migration 010) and every database tenant's data plane: Phoenix's
-- per-tenant columns and tenant indexes. Each side defines tenantry.holds_tenant_rows(t) (whether
-- this database holds tenant t's rows) and tenantry.tenant_view_grantees(t) (the roles, quoted,
-- that read a data table's tenant column and tenantry_ext through tenants' own views), and
-- tenantry.ensure_own_schema(). Placeholders: {{app}} (identifier), {{app_name}} (bare name).

-- The table a tenant's rows of registered table `tbl` live in (shared: the base table; schema
-- tenants: their copy; database tenants: the table of the same name in their own database), with
-- its tenant column.
CREATE OR REPLACE FUNCTION tenantry.data_table(t tenantry.tenant, tbl text, OUT data regclass, OUT tenant_column name,
                                    OUT schema_name name, OUT table_name name)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
  SELECT r.tenant_column, r.schema_name, r.table_name INTO tenant_column, schema_name, table_name
  FROM tenantry.registered_table r
  WHERE r.kind = 'multi_tenant' AND (r.table_name = tbl OR format('%I.%I', r.schema_name, r.table_name) = tbl
                                     OR r.schema_name || '.' || r.table_name = tbl);
  IF tenant_column IS NULL THEN
    RAISE EXCEPTION 'TENANTRY_ERR_TABLE_SHAPE: % is not a registered multi-tenant table.', tbl USING ERRCODE = '42P16';
  END IF;
  data := CASE WHEN t.isolation = 'schema' THEN format('%I.%I', t.schema_name, table_name)
               ELSE format('%I.%I', schema_name, table_name) END::regclass;
END
$fn$;

-- (Re)creates the tenant's own view of `tbl` in its face schema: the table's columns but the
-- tenant column and tenantry_ext, then the tenant's extra columns, typed; writable through
-- INSTEAD OF triggers. The tenant id is written into the extra columns' expressions so that
-- a per-tenant index on them is both usable and safe for other tenants' values.
CREATE OR REPLACE FUNCTION tenantry.refresh_tenant_view(t tenantry.tenant, tbl text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  d        record;
  face     name := 'tenantry_f_' || replace(t.uuid::text, '-', '');
  view     text;
  cols     text[];
  exts     text[];
  extnames text[];
  pk       text[];
  assign   text;
  body     text;
  fn       text;
  grantee  name;
BEGIN
  d := tenantry.data_table(t, tbl);
  view := format('%I.%I', face, d.table_name);
  SELECT array_agg(quote_ident(a.attname) ORDER BY a.attnum) INTO cols
  FROM pg_attribute a
  WHERE a.attrelid = d.data AND a.attnum > 0 AND NOT a.attisdropped AND a.attname NOT IN (d.tenant_column, 'tenantry_ext');
  SELECT array_agg(format('(CASE WHEN %I = %s THEN (tenantry_ext ->> %L)::%s END)', d.tenant_column, t.id, c.column_name, c.type)
                   ORDER BY c.column_name),
         array_agg(c.column_name::text ORDER BY c.column_name)
  INTO exts, extnames
  FROM tenantry.tenant_column c
  WHERE c.tenant_id = t.id AND c.schema_name = d.schema_name AND c.table_name = d.table_name;
  SELECT array_agg(quote_ident(a.attname) ORDER BY k.ord) INTO pk
  FROM pg_constraint con CROSS JOIN LATERAL unnest(con.conkey) WITH ORDINALITY k(n, ord)
  JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n
  WHERE con.conrelid = d.data AND con.contype = 'p' AND a.attname <> d.tenant_column;

  PERFORM set_config('tenantry.provisioning', 'on', true);
  EXECUTE format('DROP VIEW IF EXISTS %s', view);
  IF exts IS NULL THEN
    -- no extra columns left: schema tenants keep a plain tenant-facing view, shared ones use tenantry_v's
    IF t.isolation = 'schema' THEN
      PERFORM tenantry.create_facing_view(face, d.data, d.tenant_column, true,
        ARRAY(SELECT '{{app_name}}'::name UNION ALL SELECT role_name FROM tenantry.tenant_role WHERE tenant_id = t.id));
    END IF;
    RETURN;
  END IF;
  EXECUTE format('CREATE VIEW %s WITH (security_invoker = true, security_barrier = true) AS SELECT %s, %s FROM %s',
    view, array_to_string(cols, ', '),
    (SELECT string_agg(format('%s AS %I', e, n), ', ') FROM unnest(exts, extnames) AS u(e, n)), d.data);
  -- the view's columns take the base table's defaults, so the trigger sees them in NEW
  FOR body IN SELECT format('ALTER VIEW %s ALTER COLUMN %I SET DEFAULT %s', view, a.attname, pg_get_expr(ad.adbin, ad.adrelid))
              FROM pg_attrdef ad JOIN pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum
              WHERE ad.adrelid = d.data AND a.attname NOT IN (d.tenant_column, 'tenantry_ext') LOOP
    EXECUTE body;
  END LOOP;
  assign := format('jsonb_strip_nulls(jsonb_build_object(%s))',
    (SELECT string_agg(format('%L, NEW.%I', n, n), ', ') FROM unnest(extnames) AS n));
  fn := format('%I.%I', face, d.table_name || '_write');
  EXECUTE format($f$CREATE OR REPLACE FUNCTION %s() RETURNS trigger LANGUAGE plpgsql AS $body$
    BEGIN
      IF TG_OP = 'INSERT' THEN
        INSERT INTO %s (%s, tenantry_ext) VALUES (%s, %s);
        RETURN NEW;
      ELSIF TG_OP = 'UPDATE' THEN
        UPDATE %s SET (%s, tenantry_ext) = (SELECT %s, (tenantry_ext - %L::text[]) || %s) WHERE (%s) = (%s);
        RETURN NEW;
      END IF;
      DELETE FROM %s WHERE (%s) = (%s);
      RETURN OLD;
    END $body$$f$,
    fn,
    d.data, array_to_string(cols, ', '), (SELECT string_agg('NEW.' || c, ', ') FROM unnest(cols) c), assign,
    d.data, array_to_string(cols, ', '), (SELECT string_agg('NEW.' || c, ', ') FROM unnest(cols) c), extnames, assign,
      array_to_string(pk, ', '), (SELECT string_agg('OLD.' || c, ', ') FROM unnest(pk) c),
    d.data, array_to_string(pk, ', '), (SELECT string_agg('OLD.' || c, ', ') FROM unnest(pk) c));
  -- The trigger writes the data table by name, which tenants cannot; it runs as the application
  -- role (no BYPASSRLS: row-level security still resolves the tenant from session_user or the
  -- tenant setting, exactly as for the caller).
  EXECUTE format('ALTER FUNCTION %s() SECURITY DEFINER SET search_path = pg_catalog, pg_temp', fn);
  EXECUTE format('ALTER FUNCTION %s() OWNER TO {{app}}', fn);
  EXECUTE format('REVOKE ALL ON FUNCTION %s() FROM PUBLIC', fn);
  EXECUTE format('CREATE TRIGGER tenantry_write INSTEAD OF INSERT OR UPDATE OR DELETE ON %s FOR EACH ROW EXECUTE FUNCTION %s()', view, fn);
  EXECUTE format('REVOKE ALL ON %s FROM PUBLIC', view);
  FOR grantee IN SELECT '{{app_name}}'::name UNION ALL SELECT role_name FROM tenantry.tenant_role WHERE tenant_id = t.id LOOP
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO %I', view, grantee);
    EXECUTE format('GRANT EXECUTE ON FUNCTION %s() TO %I', fn, grantee);
  END LOOP;
END
$fn$;

-- Phoenix's per-tenant column: the current tenant adds `col` of type `typ` to its view of `tbl`.
CREATE OR REPLACE FUNCTION tenantry.add_tenant_column(tbl text, col name, typ text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  t tenantry.tenant;
  d record;
  canonical text;
BEGIN
  SELECT * INTO t FROM tenantry.tenant WHERE id = tenantry.current_tenant();
  IF t.id IS NULL OR t.kind <> 'regular' OR NOT tenantry.holds_tenant_rows(t) THEN
    RAISE EXCEPTION 'TENANTRY_ERR_TENANT_VIEW: Per-tenant columns are added from the tenant''s own session (a database tenant''s in its own database).' USING ERRCODE = '42501';
  END IF;
  canonical := format_type(to_regtype(typ), NULL);
  IF canonical IS NULL OR typ ~ '[;()]' THEN
    RAISE EXCEPTION 'TENANTRY_ERR_INVALID_ARGUMENT: Invalid column type: % is not a PostgreSQL type.', typ USING ERRCODE = '22023';
  END IF;
  d := tenantry.data_table(t, tbl);
  IF EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = d.data AND attname = col AND NOT attisdropped) THEN
    RAISE EXCEPTION 'TENANTRY_ERR_INVALID_ARGUMENT: Invalid column: % already exists in %.', col, tbl USING ERRCODE = '42701';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = d.data AND attname = 'tenantry_ext' AND NOT attisdropped) THEN
    EXECUTE format('ALTER TABLE %s ADD COLUMN tenantry_ext jsonb NOT NULL DEFAULT %L', d.data, '{}');
    EXECUTE format('GRANT SELECT (tenantry_ext), INSERT (tenantry_ext), UPDATE (tenantry_ext) ON %s TO %s', d.data, tenantry.tenant_view_grantees(t));
  END IF;
  -- The tenant's view computes its extra columns from the tenant column (tenant roles still
  -- cannot name the data table: no USAGE on its schema).
  EXECUTE format('GRANT SELECT (%I) ON %s TO %s', d.tenant_column, d.data, tenantry.tenant_view_grantees(t));
  IF t.isolation = 'schema' THEN
    EXECUTE format('GRANT SELECT (%I, tenantry_ext), INSERT (tenantry_ext), UPDATE (tenantry_ext) ON %s TO %I',
                   d.tenant_column, d.data, (SELECT min(role_name) FROM tenantry.tenant_role WHERE tenant_id = t.id));
  END IF;
  PERFORM tenantry.ensure_own_schema();
  INSERT INTO tenantry.tenant_column (tenant_id, schema_name, table_name, column_name, type)
  VALUES (t.id, d.schema_name, d.table_name, col, canonical);
  PERFORM tenantry.refresh_tenant_view(t, tbl);
END
$fn$;

-- An index that serves the current tenant's queries on its view of `tbl`: on the tenant column
-- and the given columns (its extra columns by their per-tenant expressions). Plain columns make
-- one index that every tenant shares; extra columns one per tenant, capped per table.
CREATE OR REPLACE FUNCTION tenantry.create_tenant_index(tbl text, cols text[]) RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  t     tenantry.tenant;
  d     record;
  keys  text[] := '{}';
  c     text;
  ext   tenantry.tenant_column;
  name  text;
  cap   integer := (SELECT value::integer FROM tenantry.setting WHERE setting.name = 'max_tenant_indexes_per_table');
BEGIN
  SELECT * INTO t FROM tenantry.tenant WHERE id = tenantry.current_tenant();
  IF t.id IS NULL THEN
    RAISE EXCEPTION 'TENANTRY_ERR_NO_TENANT: A tenant index is created from the tenant''s own session.' USING ERRCODE = '42501';
  END IF;
  d := tenantry.data_table(t, tbl);
  IF cols IS NULL OR cardinality(cols) = 0 THEN
    RAISE EXCEPTION 'TENANTRY_ERR_INVALID_ARGUMENT: Invalid columns: name at least one.' USING ERRCODE = '22023';
  END IF;
  FOREACH c IN ARRAY cols LOOP
    SELECT * INTO ext FROM tenantry.tenant_column x
    WHERE x.tenant_id = t.id AND x.schema_name = d.schema_name AND x.table_name = d.table_name AND x.column_name = c;
    IF ext.column_name IS NOT NULL THEN
      keys := keys || format('(CASE WHEN %I = %s THEN (tenantry_ext ->> %L)::%s END)', d.tenant_column, t.id, c, ext.type);
    ELSIF c <> d.tenant_column AND c <> 'tenantry_ext'
          AND EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = d.data AND attname = c AND NOT attisdropped) THEN
      keys := keys || quote_ident(c);
    ELSE
      RAISE EXCEPTION 'TENANTRY_ERR_INVALID_ARGUMENT: Invalid column: % is not a column of %.', c, tbl USING ERRCODE = '42703';
    END IF;
  END LOOP;
  name := 'tenantry_ix_' || left(md5(d.data::text || array_to_string(keys, ',')), 20);
  -- One creator per table at a time (until commit): the cap is counted and the name looked up
  -- with no other tenant's index being added meanwhile.
  PERFORM pg_advisory_xact_lock(hashtext('tenantry_ix'), d.data::oid::integer);
  IF to_regclass(format('%I.%I', (SELECT nspname FROM pg_namespace n JOIN pg_class k ON k.relnamespace = n.oid WHERE k.oid = d.data), name)) IS NULL THEN
    IF (SELECT count(*) FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
        WHERE i.indrelid = d.data AND ic.relname LIKE 'tenantry\_ix\_%') >= cap THEN
      RAISE EXCEPTION 'TENANTRY_ERR_INDEX_LIMIT: % already has % tenant indexes (max_tenant_indexes_per_table); every index slows planning and writes for all tenants.', tbl, cap
        USING ERRCODE = '54000';
    END IF;
    EXECUTE format('CREATE INDEX %I ON %s (%I, %s)', name, d.data, d.tenant_column, array_to_string(keys, ', '));
  END IF;
  RETURN name;
END
$fn$;

REVOKE ALL ON FUNCTION tenantry.data_table(tenantry.tenant, text), tenantry.refresh_tenant_view(tenantry.tenant, text),
  tenantry.add_tenant_column(text, name, text), tenantry.create_tenant_index(text, text[]) FROM PUBLIC;
