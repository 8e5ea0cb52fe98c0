-- Change capture for online tenant moves (src/fleet/move, docs/fleet.md "Online move"),
-- installed by the mover in the database a moving tenant's rows leave (the catalog database for
-- a shared tenant, the tenant's own database otherwise) and dropped with the move's cleanup.
--
-- A row trigger per multi-tenant table (filtered to the moving tenant with WHEN on shared
-- tables) records the primary key of every row the tenant inserts, updates or deletes; the mover
-- re-reads those rows and applies their current state to the new copy, so replaying a key twice
-- is harmless and a killed mover resumes. While the tenant is fenced (a row in
-- tenantry_move.fence) the same trigger refuses its writes with SQLSTATE 40001: nothing written
-- to the old copy after the fence can be missed. Only tenantry's operator can reach this schema.
CREATE SCHEMA IF NOT EXISTS tenantry_move;
REVOKE ALL ON SCHEMA tenantry_move FROM PUBLIC;

CREATE TABLE IF NOT EXISTS tenantry_move.log (
  id        bigserial PRIMARY KEY,
  tenant_id integer NOT NULL,
  rel       oid NOT NULL,
  key       jsonb NOT NULL
);
CREATE INDEX IF NOT EXISTS log_tenant ON tenantry_move.log (tenant_id, id);
CREATE TABLE IF NOT EXISTS tenantry_move.fence (tenant_id integer PRIMARY KEY);
REVOKE ALL ON ALL TABLES IN SCHEMA tenantry_move FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA tenantry_move FROM PUBLIC;

-- TG_ARGV[0]: the tenant id; TG_ARGV[1]: the table's primary-key columns as a text[] literal.
CREATE OR REPLACE FUNCTION tenantry_move.capture() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  tenant  integer := TG_ARGV[0]::integer;
  keys    text[] := TG_ARGV[1]::text[];
  new_key jsonb;
  old_key jsonb;
BEGIN
  IF EXISTS (SELECT 1 FROM tenantry_move.fence f WHERE f.tenant_id = tenant) THEN
    RAISE EXCEPTION 'tenantry: tenant % is being moved; its writes pause for the cut-over, retry', tenant
      USING ERRCODE = '40001', HINT = 'Run the transaction again in a moment.';
  END IF;
  IF TG_OP <> 'DELETE' THEN
    SELECT jsonb_object_agg(k, to_jsonb(NEW) -> k) INTO new_key FROM unnest(keys) k;
    INSERT INTO tenantry_move.log (tenant_id, rel, key) VALUES (tenant, TG_RELID, new_key);
  END IF;
  IF TG_OP <> 'INSERT' THEN
    SELECT jsonb_object_agg(k, to_jsonb(OLD) -> k) INTO old_key FROM unnest(keys) k;
    IF old_key IS DISTINCT FROM new_key THEN
      INSERT INTO tenantry_move.log (tenant_id, rel, key) VALUES (tenant, TG_RELID, old_key);
    END IF;
  END IF;
  RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END
$fn$;
REVOKE ALL ON FUNCTION tenantry_move.capture() FROM PUBLIC;
