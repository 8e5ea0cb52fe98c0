-- tenantry catalog, version 16: cross-tenant scans of many shared and schema tenants in one
-- statement (seed 004's TENANT-WHERE, "one query instead of one per tenant").
--
-- Settings are per statement: a policy's (SELECT current tenant) is computed once per statement,
-- so no single plain statement can run a query for several tenants. This function runs `query`
-- once per tenant, each time as its own statement (EXECUTE) after setting exactly what a
-- tenant-scoped transaction sets: tenantry.tenant, the tenant's search_path and
-- tenantry.skip_groups. Row-level security, tenant views and tenant_id() therefore see each
-- tenant as in a statement of its own. It runs as the caller (SECURITY INVOKER, the application
-- role, in a READ ONLY transaction), so it grants nothing the caller could not already do.
--
-- Each row is prefixed with its tenant's id; the caller gives the column list. A tenant whose
-- result does not fit that list (42804: its own view or column changes the shape) — or, with
-- catch_all, that fails in any way — is left out and its id is recorded in the setting named
-- `report` (comma-separated), for the caller to run on its own. Rows such a tenant returned
-- before failing stay in the result, so the caller drops every row of a reported tenant.
CREATE FUNCTION tenantry.scan_tenants(tenant_ids integer[], search_paths text[], skip_groups boolean[],
                                      query text, catch_all boolean, report text)
RETURNS SETOF record
LANGUAGE plpgsql VOLATILE
AS $fn$
DECLARE
  i         integer;
  fallback  text := '';
BEGIN
  IF report !~ '^tenantry\.scan_[a-z0-9_]{1,40}$' THEN
    RAISE EXCEPTION 'tenantry.scan_tenants: bad report setting %', report USING ERRCODE = '22023';
  END IF;
  FOR i IN 1 .. coalesce(pg_catalog.array_length(tenant_ids, 1), 0) LOOP
    PERFORM pg_catalog.set_config('tenantry.tenant', tenant_ids[i]::text, true),
            pg_catalog.set_config('search_path', search_paths[i], true),
            pg_catalog.set_config('tenantry.skip_groups', CASE WHEN skip_groups[i] THEN 'on' ELSE '' END, true);
    BEGIN
      RETURN QUERY EXECUTE pg_catalog.format(E'SELECT %s::integer, q.* FROM (\n%s\n) q', tenant_ids[i], query);
    EXCEPTION
      WHEN datatype_mismatch THEN
        fallback := fallback || ',' || tenant_ids[i];
      WHEN others THEN
        IF NOT catch_all THEN
          RAISE;
        END IF;
        fallback := fallback || ',' || tenant_ids[i];
    END;
  END LOOP;
  PERFORM pg_catalog.set_config('tenantry.tenant', '', true),
          pg_catalog.set_config('tenantry.skip_groups', '', true),
          pg_catalog.set_config(report, pg_catalog.ltrim(fallback, ','), true);
  RETURN;
END
$fn$;

REVOKE ALL ON FUNCTION tenantry.scan_tenants(integer[], text[], boolean[], text, boolean, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenantry.scan_tenants(integer[], text[], boolean[], text, boolean, text) TO {{app}};
