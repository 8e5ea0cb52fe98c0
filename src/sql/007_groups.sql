-- tenantry catalog, version 7: tenant groups (seed 004). A group owns one data segment of one
-- multi-tenant table; its member tenants read and write that segment. A group is a row of
-- tenantry.tenant with kind 'group' (so the tenant column's foreign key covers it); it is never
-- a tenant anyone acts as.

CREATE TABLE tenantry.tenant_group (
  id          integer PRIMARY KEY REFERENCES tenantry.tenant (id) ON DELETE CASCADE,
  schema_name name NOT NULL,
  table_name  name NOT NULL,
  FOREIGN KEY (schema_name, table_name) REFERENCES tenantry.registered_table (schema_name, table_name) ON DELETE CASCADE
);

CREATE TABLE tenantry.group_member (
  group_id    integer NOT NULL REFERENCES tenantry.tenant_group (id) ON DELETE CASCADE,
  tenant_id   integer NOT NULL REFERENCES tenantry.tenant (id) ON DELETE CASCADE,
  schema_name name NOT NULL,
  table_name  name NOT NULL,
  PRIMARY KEY (tenant_id, schema_name, table_name)   -- one group per tenant and table
);
CREATE INDEX group_member_group ON tenantry.group_member (group_id);
REVOKE ALL ON tenantry.tenant_group, tenantry.group_member FROM PUBLIC;
GRANT SELECT ON tenantry.tenant_group, tenantry.group_member TO {{maint}};

CREATE TRIGGER tenant_group_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenantry.group_member
  FOR EACH STATEMENT EXECUTE FUNCTION tenantry.announce_change();

-- The segments the current tenant reads and writes in table `tbl` ('schema.table'): its own
-- and, when it belongs to a group for that table, the group's. NULL without a tenant.
CREATE FUNCTION tenantry.segments(tbl text) RETURNS integer[]
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT CASE WHEN t.id IS NULL THEN NULL
              -- a cross-tenant scan with skipGroupDuplicates reads a group's rows through one member only
              WHEN current_setting('tenantry.skip_groups', true) = 'on' THEN ARRAY[t.id]
              ELSE array_prepend(t.id, coalesce((SELECT array_agg(m.group_id) FROM tenantry.group_member m
                                  WHERE m.tenant_id = t.id AND format('%I.%I', m.schema_name, m.table_name) = tbl), '{}'))
  END
  FROM (SELECT tenantry.current_tenant() AS id) t
$$;

-- Where the current tenant's new rows of `tbl` go: its group's segment, else its own.
CREATE FUNCTION tenantry.current_segment(tbl text) RETURNS integer
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT coalesce(
    (SELECT m.group_id FROM tenantry.group_member m
     WHERE m.tenant_id = tenantry.current_tenant() AND format('%I.%I', m.schema_name, m.table_name) = tbl),
    tenantry.current_tenant())
$$;

-- BUFFER-GROUP-NAME of seed 004: the group owning a segment, when the current tenant may see it.
CREATE FUNCTION tenantry.group_name(segment integer) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT t.name FROM tenantry.tenant t
  WHERE t.id = segment AND t.kind = 'group'
    AND EXISTS (SELECT 1 FROM tenantry.group_member m WHERE m.group_id = t.id AND m.tenant_id = tenantry.current_tenant())
$$;

-- BUFFER-TENANT-ID of seed 004: the tenant (or group) owning a segment, when visible.
CREATE FUNCTION tenantry.segment_owner(segment integer) RETURNS integer
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT segment WHERE segment = tenantry.current_tenant()
     OR EXISTS (SELECT 1 FROM tenantry.group_member m WHERE m.group_id = segment AND m.tenant_id = tenantry.current_tenant())
$$;

-- Switches table `base` to the group-aware policy: rows of the tenant's own segment and of its
-- groups' segments; new rows default to the group's segment. The facing view gains the
-- read-only columns segment_group (BUFFER-GROUP-NAME) and segment_tenant (BUFFER-TENANT-ID).
CREATE FUNCTION tenantry.enable_groups(base regclass, tenant_column name) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  qualified text;
  pol_using text;
  pol_check text;
  cols      text;
BEGIN
  SELECT format('%I.%I', n.nspname, c.relname) INTO qualified
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = base;
  pol_using := format('%I = ANY ((SELECT tenantry.segments(%L))::integer[])', tenant_column, qualified);
  pol_check := pol_using;
  EXECUTE format('DROP POLICY IF EXISTS tenantry_isolation ON %s', qualified);
  EXECUTE format('CREATE POLICY tenantry_isolation ON %s FOR ALL USING (%s) WITH CHECK (%s)', qualified, pol_using, pol_check);
  EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET DEFAULT tenantry.current_segment(%L)', qualified, tenant_column, qualified);
  SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO cols
  FROM pg_attribute a WHERE a.attrelid = base AND a.attnum > 0 AND NOT a.attisdropped AND a.attname <> tenant_column
    AND a.attname <> 'tenantry_ext';
  -- The view computes the segment columns from the tenant column; tenant roles still cannot
  -- name the base table (no USAGE on its schema), so they reach this column only that way.
  EXECUTE format('GRANT SELECT (%I) ON %s TO {{app}}, {{tenants}}', tenant_column, qualified);
  EXECUTE format('CREATE OR REPLACE VIEW tenantry_v.%I WITH (security_invoker = true, security_barrier = true) AS
                  SELECT %s, tenantry.group_name(%I) AS segment_group, tenantry.segment_owner(%I) AS segment_tenant FROM %s',
                 (SELECT relname FROM pg_class WHERE oid = base), cols, tenant_column, tenant_column, qualified);
END
$fn$;

REVOKE ALL ON FUNCTION tenantry.segments(text), tenantry.current_segment(text), tenantry.group_name(integer),
  tenantry.segment_owner(integer), tenantry.enable_groups(regclass, name) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenantry.segments(text), tenantry.current_segment(text), tenantry.group_name(integer),
  tenantry.segment_owner(integer) TO {{app}}, {{global}}, {{maint}};
