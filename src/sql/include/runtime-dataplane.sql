-- The runtime services' part of a database tenant's data plane (after runtime-tables.sql): its
-- job, event and id tables in schema tenantry of its own database, and tenantry.next_id() for
-- them. Rendered with the data plane's placeholders {{app}} and {{role}} (identifiers).
SELECT tenantry.runtime_install('tenantry', '', (SELECT rolname FROM pg_roles WHERE oid = '{{app}}'::regrole),
                                NULL, NULL);

-- The next id of `entity` for the current tenant, from the same counter hi/lo blocks are
-- reserved from (tenantry.ids in TypeScript), so the two never hand out the same id. Usable as
-- a column default. The counter row stays locked until the transaction ends: concurrent callers
-- of one tenant and entity queue on it (the hi/lo allocator in TypeScript does not).
CREATE OR REPLACE FUNCTION tenantry.next_id(entity text) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
#variable_conflict use_column
DECLARE
  tenant integer := tenantry.current_tenant();
  result bigint;
BEGIN
  IF tenant IS NULL THEN
    RAISE EXCEPTION 'TENANTRY_ERR_NO_TENANT: No tenant in context: tenantry.next_id() needs one.' USING ERRCODE = '42501';
  END IF;
  IF entity IS NULL OR entity !~ '^[A-Za-z][A-Za-z0-9_.:-]{0,62}$' THEN
    RAISE EXCEPTION 'TENANTRY_ERR_INVALID_ARGUMENT: Invalid id entity: % must start with a letter (letters, digits, _ . : -, at most 63).', entity
      USING ERRCODE = '22023';
  END IF;
  INSERT INTO tenantry.id_counter AS c (tenant_id, entity, value) VALUES (tenant, entity, 1)
  ON CONFLICT (tenant_id, entity) DO UPDATE SET value = c.value + 1
  RETURNING value INTO result;
  RETURN result;
END
$fn$;
REVOKE ALL ON FUNCTION tenantry.next_id(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenantry.next_id(text) TO {{app}}, {{role}};
