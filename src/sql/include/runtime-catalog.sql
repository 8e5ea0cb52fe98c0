-- The catalog's part of the runtime services (migration 018, runs as the owner role): the "has
-- work" signals that let workers and event subscribers find tenants with something to do without
-- one query per tenant per tick, the subscribers' acknowledged positions, and the functions the
-- application role calls. Rows go with their tenant (ON DELETE CASCADE).

-- Schema and database tenants with queued or running jobs: due_at is when to look next (the
-- earliest queued run_at or lease expiry). Written by enqueues (tenantry.job_signal, in the
-- enqueuing transaction for schema tenants) and by workers; a notification on tenantry_jobs
-- (payload: the tenant id) wakes idle workers. Shared tenants need none: one claim query reads
-- all of them.
CREATE TABLE tenantry.job_pending (
  tenant_id   integer PRIMARY KEY REFERENCES tenantry.tenant (id) ON DELETE CASCADE,
  due_at      timestamptz NOT NULL,
  signaled_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX job_pending_due ON tenantry.job_pending (due_at);

-- The last event position published per tenant (a hint for subscribers: exact for shared and
-- schema tenants, whose publishes update it in their own transaction).
CREATE TABLE tenantry.event_hint (
  tenant_id integer PRIMARY KEY REFERENCES tenantry.tenant (id) ON DELETE CASCADE,
  position  bigint NOT NULL
);

-- Per subscriber and tenant: the last acknowledged position, and the process that delivers the
-- tenant's events now (owner) until lease_until, so one subscriber name delivers each tenant's
-- events from one process at a time, in order.
CREATE TABLE tenantry.event_ack (
  subscriber  text NOT NULL CHECK (subscriber ~ '^[A-Za-z][A-Za-z0-9_.:-]{0,62}$'),
  tenant_id   integer NOT NULL REFERENCES tenantry.tenant (id) ON DELETE CASCADE,
  position    bigint NOT NULL DEFAULT 0,
  owner       uuid,
  lease_until timestamptz,
  PRIMARY KEY (subscriber, tenant_id)
);
CREATE INDEX event_ack_tenant ON tenantry.event_ack (tenant_id);

REVOKE ALL ON tenantry.job_pending, tenantry.event_hint, tenantry.event_ack FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON tenantry.job_pending, tenantry.event_hint, tenantry.event_ack TO {{maint}};

-- Called by every enqueue of a shared or schema tenant, in the enqueuing statement: marks a
-- schema tenant as having work due at `due` (unless it already has earlier work: then nothing is
-- written and nothing is locked) and wakes workers when the transaction commits.
CREATE FUNCTION tenantry.job_signal(due timestamptz) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  tenant integer := tenantry.current_tenant();
BEGIN
  IF tenant IS NULL THEN
    RAISE EXCEPTION 'TENANTRY_ERR_NO_TENANT: No tenant in context: enqueuing a job needs one.' USING ERRCODE = '42501';
  END IF;
  IF EXISTS (SELECT 1 FROM tenantry.tenant t WHERE t.id = tenant AND t.schema_name IS NOT NULL)
     AND NOT EXISTS (SELECT 1 FROM tenantry.job_pending p WHERE p.tenant_id = tenant AND p.due_at <= due) THEN
    INSERT INTO tenantry.job_pending AS p (tenant_id, due_at) VALUES (tenant, due)
    ON CONFLICT (tenant_id) DO UPDATE SET due_at = least(p.due_at, EXCLUDED.due_at), signaled_at = now();
  END IF;
  PERFORM pg_notify('tenantry_jobs', tenant::text);
END
$fn$;

-- The same for a database tenant, called by the library (maintenance role) after the enqueue.
CREATE FUNCTION tenantry.job_signal_tenant(tenant integer, due timestamptz) RETURNS void
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $fn$
  INSERT INTO tenantry.job_pending AS p (tenant_id, due_at) VALUES (tenant, due)
  ON CONFLICT (tenant_id) DO UPDATE SET due_at = least(p.due_at, EXCLUDED.due_at), signaled_at = now();
  SELECT pg_notify('tenantry_jobs', tenant::text);
$fn$;

-- Called by every publish of a shared or schema tenant, in the publishing statement (the
-- tenant's event_head row is already locked, so this adds no waiting).
CREATE FUNCTION tenantry.event_signal(pos bigint) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  tenant integer := tenantry.current_tenant();
BEGIN
  IF tenant IS NULL THEN
    RAISE EXCEPTION 'TENANTRY_ERR_NO_TENANT: No tenant in context: publishing an event needs one.' USING ERRCODE = '42501';
  END IF;
  INSERT INTO tenantry.event_hint AS h (tenant_id, position) VALUES (tenant, pos)
  ON CONFLICT (tenant_id) DO UPDATE SET position = greatest(h.position, EXCLUDED.position);
  PERFORM pg_notify('tenantry_events', tenant::text);
END
$fn$;

-- The next id of `entity` for the current tenant, from the counter hi/lo blocks are reserved from
-- (tenantry.ids), so the two never hand out the same id; usable as a column default. The counter
-- row stays locked until the transaction ends (concurrent callers of one tenant and entity queue).
CREATE FUNCTION tenantry.next_id(entity text) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
#variable_conflict use_column
DECLARE
  tenant integer := tenantry.current_tenant();
  target name;
  result bigint;
BEGIN
  IF tenant IS NULL THEN
    RAISE EXCEPTION 'TENANTRY_ERR_NO_TENANT: No tenant in context: tenantry.next_id() needs one.' USING ERRCODE = '42501';
  END IF;
  IF entity IS NULL OR entity !~ '^[A-Za-z][A-Za-z0-9_.:-]{0,62}$' THEN
    RAISE EXCEPTION 'TENANTRY_ERR_INVALID_ARGUMENT: Invalid id entity: % must start with a letter (letters, digits, _ . : -, at most 63).', entity
      USING ERRCODE = '22023';
  END IF;
  SELECT t.schema_name INTO target FROM tenantry.tenant t WHERE t.id = tenant;
  IF target IS NULL THEN
    INSERT INTO tenantry.id_counter AS c (tenant_id, entity, value) VALUES (tenant, entity, 1)
    ON CONFLICT (tenant_id, entity) DO UPDATE SET value = c.value + 1
    RETURNING value INTO result;
  ELSE
    EXECUTE format('INSERT INTO %I.tenantry_id_counter AS c (tenant_id, entity, value) VALUES ($1, $2, 1)
                    ON CONFLICT (tenant_id, entity) DO UPDATE SET value = c.value + 1 RETURNING value', target)
      INTO result USING tenant, entity;
  END IF;
  RETURN result;
END
$fn$;

REVOKE ALL ON FUNCTION tenantry.job_signal(timestamptz), tenantry.job_signal_tenant(integer, timestamptz),
  tenantry.event_signal(bigint), tenantry.next_id(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenantry.job_signal(timestamptz), tenantry.event_signal(bigint) TO {{app}};
GRANT EXECUTE ON FUNCTION tenantry.job_signal_tenant(integer, timestamptz) TO {{maint}};
GRANT EXECUTE ON FUNCTION tenantry.next_id(text) TO {{app}}, {{global}};
