-- tenantry catalog, version 3: declaring multi-tenant and shared tables.
-- These run as the caller (the operator, who owns the tables); they are not granted to tenant roles.

-- @include facing-views.sql

-- Only tenantry's roles and the operator may name objects in a schema that holds base tables:
-- tenants reach them through their tenant-facing views only.
CREATE FUNCTION tenantry.close_base_schema(target_schema name) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
  EXECUTE format('REVOKE USAGE ON SCHEMA %I FROM PUBLIC', target_schema);
  EXECUTE format('GRANT USAGE ON SCHEMA %I TO {{app}}, {{maint}}, {{fdw}}', target_schema);
END
$fn$;

-- Declares schema.table multi-tenant: checks its shape, then enables and forces row-level
-- security with one policy on the tenant column, defaults that column to the current tenant,
-- grants tenant work DML (never TRUNCATE) and registers it. Safe to call again.
CREATE FUNCTION tenantry.multi_tenant(target regclass, tenant_column name DEFAULT 'tenant_id')
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  rel        record;
  col        record;
  pk_cols    name[];
  bad        record;
  qualified  text;
  pol_expr   text;
BEGIN
  SELECT c.oid, c.relkind, n.nspname, c.relname INTO rel
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.oid = target;
  IF rel.relkind NOT IN ('r', 'p') THEN
    RAISE EXCEPTION 'TENANTRY_ERR_TABLE_SHAPE: %.% is not a table (only ordinary and partitioned tables can be multi-tenant).',
      rel.nspname, rel.relname USING ERRCODE = '42P16';
  END IF;
  IF rel.nspname = 'tenantry' THEN
    RAISE EXCEPTION 'TENANTRY_ERR_TABLE_SHAPE: tables in schema tenantry belong to the catalog.' USING ERRCODE = '42P16';
  END IF;
  qualified := format('%I.%I', rel.nspname, rel.relname);

  SELECT a.attname, a.atttypid INTO col
  FROM pg_attribute a WHERE a.attrelid = target AND a.attname = tenant_column AND NOT a.attisdropped;
  SELECT array_agg(a.attname ORDER BY k.ord) INTO pk_cols
  FROM pg_constraint con
  CROSS JOIN LATERAL unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
  JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
  WHERE con.conrelid = target AND con.contype = 'p';

  IF col.attname IS NULL OR pk_cols IS NULL OR pk_cols[1] IS DISTINCT FROM tenant_column THEN
    RAISE EXCEPTION 'TENANTRY_ERR_TABLE_SHAPE: %: the tenant column % must exist and be the first primary-key column.', qualified, tenant_column
      USING ERRCODE = '42P16',
            HINT = format('For example: ALTER TABLE %s ADD COLUMN %I integer NOT NULL; ALTER TABLE %s DROP CONSTRAINT <pkey>, ADD PRIMARY KEY (%I%s);',
                          qualified, tenant_column, qualified, tenant_column,
                          coalesce(', ' || array_to_string(array_remove(pk_cols, tenant_column), ', '), ', <key columns>'));
  END IF;
  IF col.atttypid <> 'integer'::regtype THEN
    RAISE EXCEPTION 'TENANTRY_ERR_TABLE_SHAPE: %: the tenant column % must be of type integer, not %.', qualified, tenant_column, col.atttypid::regtype
      USING ERRCODE = '42P16', HINT = format('ALTER TABLE %s ALTER COLUMN %I TYPE integer;', qualified, tenant_column);
  END IF;

  -- A unique index without the tenant column lets one tenant probe another's keys.
  SELECT i.indexrelid::regclass AS idx INTO bad
  FROM pg_index i
  WHERE i.indrelid = target AND i.indisunique
    AND NOT EXISTS (SELECT 1 FROM unnest(i.indkey) AS k(attnum)
                    JOIN pg_attribute a ON a.attrelid = target AND a.attnum = k.attnum
                    WHERE a.attname = tenant_column)
  LIMIT 1;
  IF bad.idx IS NOT NULL THEN
    RAISE EXCEPTION 'TENANTRY_ERR_TABLE_SHAPE: %: unique index % does not include the tenant column %; its violations would tell one tenant that another has a key.', qualified, bad.idx, tenant_column
      USING ERRCODE = '42P16', HINT = format('Recreate it with %I as its first column.', tenant_column);
  END IF;

  -- Foreign keys between multi-tenant tables must carry the tenant column on both sides.
  SELECT con.conname, con.conrelid::regclass AS from_table, con.confrelid::regclass AS to_table INTO bad
  FROM pg_constraint con
  WHERE con.contype = 'f'
    AND (con.conrelid = target OR con.confrelid = target)
    AND NOT (con.conrelid = target AND con.confrelid = 'tenantry.tenant'::regclass)
    AND (
      (con.conrelid = target AND (con.confrelid = target OR EXISTS (
         SELECT 1 FROM tenantry.registered_table r
         WHERE r.kind = 'multi_tenant' AND format('%I.%I', r.schema_name, r.table_name)::regclass = con.confrelid)))
      OR con.confrelid = target
    )
    AND NOT EXISTS (SELECT 1 FROM unnest(con.conkey) AS k(attnum)
                    JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
                    WHERE a.attname = tenant_column AND k.attnum = con.conkey[1])
  LIMIT 1;
  IF bad.conname IS NOT NULL THEN
    RAISE EXCEPTION 'TENANTRY_ERR_TABLE_SHAPE: %: foreign key % (% -> %) does not start with the tenant column %; its errors would let one tenant probe another''s rows.', qualified, bad.conname, bad.from_table, bad.to_table, tenant_column
      USING ERRCODE = '42P16', HINT = 'Make the tenant column the first column on both sides of the foreign key.';
  END IF;

  EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET DEFAULT %s', qualified, tenant_column, tenantry.tenant_expr('{{app_name}}'));
  IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = target AND conname = 'tenantry_tenant_fk') THEN
    EXECUTE format('ALTER TABLE %s ADD CONSTRAINT tenantry_tenant_fk FOREIGN KEY (%I) REFERENCES tenantry.tenant (id)', qualified, tenant_column);
  END IF;
  EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', qualified);
  EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', qualified);
  pol_expr := format('%I = (SELECT %s)', tenant_column, tenantry.tenant_expr('{{app_name}}'));
  EXECUTE format('DROP POLICY IF EXISTS tenantry_isolation ON %s', qualified);
  EXECUTE format('CREATE POLICY tenantry_isolation ON %s AS PERMISSIVE FOR ALL USING (%s) WITH CHECK (%s)', qualified, pol_expr, pol_expr);

  IF EXISTS (SELECT 1 FROM tenantry.registered_table r
             WHERE r.table_name = rel.relname AND r.schema_name <> rel.nspname) THEN
    RAISE EXCEPTION 'TENANTRY_ERR_TABLE_SHAPE: %: a table named % in another schema is already registered; tenant-facing names (schema tenantry_v) must be unique.', qualified, rel.relname
      USING ERRCODE = '42P16';
  END IF;
  EXECUTE format('REVOKE ALL ON %s FROM PUBLIC', qualified);
  EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO {{maint}}', qualified);
  PERFORM tenantry.grant_tenant_columns(target, tenant_column, '{{app_name}}');
  PERFORM tenantry.grant_tenant_columns(target, tenant_column, '{{tenants_name}}');
  PERFORM tenantry.grant_owned_sequences(target);
  PERFORM tenantry.create_facing_view('tenantry_v', target, tenant_column, true, ARRAY['{{app_name}}', '{{tenants_name}}']::name[]);
  PERFORM tenantry.close_base_schema(rel.nspname);

  INSERT INTO tenantry.registered_table (schema_name, table_name, kind, tenant_column)
  VALUES (rel.nspname, rel.relname, 'multi_tenant', tenant_column)
  ON CONFLICT (schema_name, table_name) DO UPDATE SET kind = 'multi_tenant', tenant_column = EXCLUDED.tenant_column, writable = true;
END
$fn$;

-- Sequences owned by a registered table's columns (serial / identity) are usable by tenant work.
CREATE FUNCTION tenantry.grant_owned_sequences(target regclass) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  seq regclass;
BEGIN
  FOR seq IN SELECT d.objid::regclass FROM pg_depend d
             WHERE d.refobjid = target AND d.classid = 'pg_class'::regclass
               AND d.deptype IN ('a', 'i') AND (SELECT relkind FROM pg_class WHERE oid = d.objid) = 'S'
  LOOP
    EXECUTE format('GRANT USAGE, SELECT ON SEQUENCE %s TO {{app}}, {{maint}}, {{global}}', seq);
  END LOOP;
END
$fn$;

-- Declares schema.table shared (global): every tenant reads it; writable => tenants may also write.
CREATE FUNCTION tenantry.shared(target regclass, writable boolean DEFAULT false) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  rel record;
  qualified text;
BEGIN
  SELECT c.relkind, n.nspname, c.relname INTO rel
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = target;
  IF rel.relkind NOT IN ('r', 'p', 'v', 'm', 'f') THEN
    RAISE EXCEPTION 'TENANTRY_ERR_TABLE_SHAPE: %.% is not a table or view.', rel.nspname, rel.relname USING ERRCODE = '42P16';
  END IF;
  IF EXISTS (SELECT 1 FROM tenantry.registered_table r
             WHERE r.schema_name = rel.nspname AND r.table_name = rel.relname AND r.kind = 'multi_tenant') THEN
    RAISE EXCEPTION 'TENANTRY_ERR_TABLE_SHAPE: %.% is multi-tenant; a multi-tenant table cannot be made shared.', rel.nspname, rel.relname
      USING ERRCODE = '42P16';
  END IF;
  qualified := format('%I.%I', rel.nspname, rel.relname);
  IF EXISTS (SELECT 1 FROM tenantry.registered_table r
             WHERE r.table_name = rel.relname AND r.schema_name <> rel.nspname) THEN
    RAISE EXCEPTION 'TENANTRY_ERR_TABLE_SHAPE: %: a table named % in another schema is already registered; tenant-facing names (schema tenantry_v) must be unique.', qualified, rel.relname
      USING ERRCODE = '42P16';
  END IF;
  EXECUTE format('REVOKE TRUNCATE, REFERENCES, TRIGGER ON %s FROM {{app}}, {{global}}', qualified);
  EXECUTE format('GRANT SELECT ON %s TO {{app}}, {{maint}}, {{global}}, {{fdw}}', qualified);
  IF writable THEN
    EXECUTE format('GRANT INSERT, UPDATE, DELETE ON %s TO {{app}}, {{global}}, {{fdw}}', qualified);
    PERFORM tenantry.grant_owned_sequences(target);
  ELSE
    EXECUTE format('REVOKE INSERT, UPDATE, DELETE ON %s FROM {{app}}, {{global}}, {{fdw}}', qualified);
  END IF;
  PERFORM tenantry.create_facing_view('tenantry_v', target, NULL, writable, ARRAY['{{app_name}}', '{{global_name}}']::name[]);
  PERFORM tenantry.close_base_schema(rel.nspname);
  INSERT INTO tenantry.registered_table (schema_name, table_name, kind, writable)
  VALUES (rel.nspname, rel.relname, 'shared', writable)
  ON CONFLICT (schema_name, table_name) DO UPDATE SET writable = EXCLUDED.writable;
END
$fn$;

REVOKE ALL ON FUNCTION tenantry.multi_tenant(regclass, name), tenantry.shared(regclass, boolean),
  tenantry.grant_owned_sequences(regclass), tenantry.grant_tenant_columns(regclass, name, name),
  tenantry.create_facing_view(name, regclass, name, boolean, name[]), tenantry.close_base_schema(name) FROM PUBLIC;
