-- Shared by the catalog (migration 003) and every database tenant's data plane.

-- Tenant-side privileges on a multi-tenant table: every column except the tenant column, so
-- that tenants never read or set it (and a tenant-facing view that omits it is all they need).
CREATE FUNCTION tenantry.grant_tenant_columns(base regclass, tenant_column name, grantee name) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  cols text;
BEGIN
  SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO cols
  FROM pg_attribute a
  WHERE a.attrelid = base AND a.attnum > 0 AND NOT a.attisdropped AND a.attname <> tenant_column;
  EXECUTE format('REVOKE ALL ON %s FROM %I', base, grantee);
  EXECUTE format('GRANT SELECT (%s), INSERT (%s), UPDATE (%s), DELETE ON %s TO %I', cols, cols, cols, base, grantee);
END
$fn$;

-- The tenant-facing view of a table in target_schema: same name, every column but the tenant
-- column (all columns of a shared table), security_invoker (the caller's privileges and
-- row-level security apply) and security_barrier; simple, so PostgreSQL can update through it.
CREATE FUNCTION tenantry.create_facing_view(target_schema name, base regclass, tenant_column name, writable boolean,
                                            grantees name[]) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  cols    text;
  view    text;
  grantee name;
BEGIN
  SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO cols
  FROM pg_attribute a
  WHERE a.attrelid = base AND a.attnum > 0 AND NOT a.attisdropped AND a.attname IS DISTINCT FROM tenant_column
    AND a.attname <> 'tenantry_ext';
  view := format('%I.%I', target_schema, (SELECT relname FROM pg_class WHERE oid = base));
  EXECUTE format('CREATE OR REPLACE VIEW %s WITH (security_invoker = true, security_barrier = true) AS SELECT %s FROM %s',
                 view, cols, base);
  EXECUTE format('REVOKE ALL ON %s FROM PUBLIC', view);
  FOREACH grantee IN ARRAY grantees LOOP
    EXECUTE format('GRANT SELECT%s ON %s TO %I', CASE WHEN writable THEN ', INSERT, UPDATE, DELETE' ELSE '' END, view, grantee);
  END LOOP;
END
$fn$;
