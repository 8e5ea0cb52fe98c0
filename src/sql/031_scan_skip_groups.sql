-- runs as: installer (creating functions as the owner trips 017's routine guard, as in 019 and 025)
-- tenantry catalog, version 31: a cross-tenant scan with skipGroupDuplicates reads each group's
-- rows through exactly one of the tenants it scans. tenantry.skip_groups used to be 'on' for
-- every member of a group but its lowest-id one — over all groups and all tenants — which read
-- a group through nobody when that member was not scanned (filtered out, disabled) and hid a
-- tenant's other groups (of other tables) too. The setting now lists the groups the current
-- tenant leaves to another scanned member ('5,9'); 'on' (older processes) still means all.
-- The batch function also checks each tenant's placement epoch, as a single tenant's prelude does
-- (021): a tenant moved since the scan read the catalog fails (TN001) instead of being read from
-- the copy it left.

CREATE OR REPLACE FUNCTION tenantry.segments(tbl text) RETURNS integer[]
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT CASE WHEN t.id IS NULL THEN NULL
              WHEN s.skip = 'on' THEN ARRAY[t.id]
              ELSE array_prepend(t.id, coalesce((SELECT array_agg(m.group_id) FROM tenantry.group_member m
                                  WHERE m.tenant_id = t.id AND format('%I.%I', m.schema_name, m.table_name) = tbl
                                    AND NOT (s.skip ~ '^[0-9]+(,[0-9]+)*$'
                                             AND m.group_id = ANY (string_to_array(s.skip, ',')::integer[]))), '{}'))
  END
  FROM (SELECT tenantry.current_tenant() AS id) t,
       (SELECT coalesce(current_setting('tenantry.skip_groups', true), '') AS skip) s
$$;

-- As tenantry.scan_tenants of version 16, with each tenant's skip_groups value as text and the
-- placement epoch the caller routed it by.
CREATE FUNCTION tenantry.scan_tenants(tenant_ids integer[], search_paths text[], skip_groups text[],
                                      epochs integer[], query text, catch_all boolean, report text)
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
            pg_catalog.set_config('tenantry.skip_groups', coalesce(skip_groups[i], ''), true);
    BEGIN
      IF NOT EXISTS (SELECT 1 FROM tenantry.tenant t WHERE t.id = tenant_ids[i] AND t.placement_epoch = epochs[i]) THEN
        PERFORM tenantry.placement_moved(tenant_ids[i]);
      END IF;
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

REVOKE ALL ON FUNCTION tenantry.scan_tenants(integer[], text[], text[], integer[], text, boolean, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenantry.scan_tenants(integer[], text[], text[], integer[], text, boolean, text) TO {{app}};
