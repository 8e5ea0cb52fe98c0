-- Shared by the catalog (migration 006) and every database tenant's data plane: seed 004's
-- multi-tenant and shared sequences.

-- Sequences known to tenantry. A multi-tenant sequence counts independently per tenant (per
-- data segment); a shared one numbers across tenants (a PostgreSQL sequence).
CREATE TABLE tenantry.sequence (
  name      text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]{0,62}$'),
  kind      text NOT NULL CHECK (kind IN ('multi_tenant', 'shared')),
  start     bigint NOT NULL DEFAULT 1,
  increment bigint NOT NULL DEFAULT 1 CHECK (increment <> 0)
);

-- The current value of each multi-tenant sequence per segment (tenant or group).
CREATE TABLE tenantry.sequence_value (
  name    text NOT NULL REFERENCES tenantry.sequence (name) ON DELETE CASCADE ON UPDATE CASCADE,
  segment integer NOT NULL REFERENCES tenantry.tenant (id) ON DELETE CASCADE,
  value   bigint NOT NULL,
  PRIMARY KEY (name, segment)
);
REVOKE ALL ON tenantry.sequence, tenantry.sequence_value FROM PUBLIC;

-- NEXT-VALUE of seed 004: the next value of `seq` for the current tenant (multi-tenant) or
-- across tenants (shared). Concurrency-safe: one row per (sequence, tenant), taken with
-- INSERT … ON CONFLICT DO UPDATE, so concurrent callers of one tenant queue on that row only.
-- A tenant can neither read nor advance another tenant's values.
CREATE FUNCTION tenantry.next(seq text) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  def    tenantry.sequence;
  tenant integer;
  result bigint;
BEGIN
  SELECT * INTO def FROM tenantry.sequence WHERE name = seq;
  IF def.name IS NULL THEN
    RAISE EXCEPTION 'TENANTRY_ERR_SEQUENCE_NOT_FOUND: Sequence % does not exist.', seq USING ERRCODE = '42P01';
  END IF;
  IF def.kind = 'shared' THEN
    RETURN nextval(format('tenantry.%I', 'seq_' || def.name)::regclass);
  END IF;
  tenant := tenantry.current_tenant();
  IF tenant IS NULL THEN
    RAISE EXCEPTION 'TENANTRY_ERR_NO_TENANT: No tenant in context: a multi-tenant sequence needs one.' USING ERRCODE = '42501';
  END IF;
  INSERT INTO tenantry.sequence_value AS v (name, segment, value) VALUES (seq, tenant, def.start)
  ON CONFLICT (name, segment) DO UPDATE SET value = v.value + def.increment
  RETURNING value INTO result;
  RETURN result;
END
$fn$;
REVOKE ALL ON FUNCTION tenantry.next(text) FROM PUBLIC;
