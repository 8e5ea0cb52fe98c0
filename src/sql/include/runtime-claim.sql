-- One claim of jobs across all shared tenants (migration 018; run by the library as the
-- maintenance role, which bypasses row-level security, then each job runs as its tenant).
--
-- Fairness: tenants take turns. The function visits tenants that have queued jobs in id order,
-- starting after `after_tenant` (the last tenant the caller served) and wrapping around once,
-- each visit one index probe. Of each visited tenant that is active and below `tenant_cap`
-- running jobs it takes the first due job; it stops once `capacity` tenants gave one or after
-- `max_visits` visits. When fewer tenants had work, it takes their next jobs (rank 2, 3, …).
-- The claim is then the first `capacity` candidates by (rank, turn): every visited tenant's
-- first job before any tenant's second. A tenant with 10,000 queued
-- jobs therefore gets one slot per claim while others wait, and a tenant with one job is served
-- in the first claim that reaches its turn. Candidates are locked FOR UPDATE SKIP LOCKED, so
-- concurrent claimers never take the same job.
--
-- Before that, leases that expired (a worker died or lost its connection mid-job) go back to the
-- queue — or to `failed` when the job has used its attempts (the dead run counted as one).
--
-- Returns the claimed jobs, then one row with job_id NULL whose job_tenant is the last tenant
-- visited: the caller's next `after_tenant`.
CREATE FUNCTION tenantry.job_claim(names text[], after_tenant integer, capacity integer, tenant_cap integer,
                                   lease interval, max_visits integer)
RETURNS TABLE (job_tenant integer, job_id uuid, job_name text, job_payload jsonb, job_attempts integer,
               job_max_attempts integer, job_lease uuid, job_run_at timestamptz, job_created_at timestamptz)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  t        integer := coalesce(after_tenant, -2147483648);
  wrapped  boolean := after_tenant IS NULL;
  k        integer;
  visits   integer := 0;
  served   integer := 0;
  room     integer;
  n        integer;
  r        record;
  c_tenant integer[] := '{}';
  c_id     uuid[] := '{}';
  c_rank   integer[] := '{}';
  c_turn   integer[] := '{}';
  v_tenant integer[] := '{}';
  v_room   integer[] := '{}';
  v_first  uuid[] := '{}';
  i        integer;
BEGIN
  UPDATE tenantry.job j
  SET state = CASE WHEN j.attempts >= j.max_attempts THEN 'failed' ELSE 'queued' END,
      lease_token = NULL, lease_until = NULL, updated_at = now(),
      last_error = 'lease expired: the worker stopped or lost its connection during the job'
  FROM (SELECT x.tenant_id, x.id FROM tenantry.job x
        WHERE x.state = 'running' AND x.lease_until < now() FOR UPDATE SKIP LOCKED) e
  WHERE j.tenant_id = e.tenant_id AND j.id = e.id;

  WHILE capacity > 0 AND served < capacity AND visits < max_visits LOOP
    k := (SELECT j.tenant_id FROM tenantry.job j WHERE j.state = 'queued' AND j.tenant_id > t
          ORDER BY j.tenant_id LIMIT 1);
    IF k IS NULL THEN
      EXIT WHEN wrapped;
      wrapped := true;
      t := -2147483648;
      CONTINUE;
    END IF;
    EXIT WHEN wrapped AND after_tenant IS NOT NULL AND k > after_tenant;
    t := k;
    visits := visits + 1;
    CONTINUE WHEN NOT EXISTS (SELECT 1 FROM tenantry.tenant x WHERE x.id = k AND x.state = 'active');
    room := capacity;
    IF tenant_cap < 2147483647 THEN  -- (no cap: no count of running jobs)
      room := least(capacity,
                    tenant_cap - (SELECT count(*) FROM tenantry.job j WHERE j.tenant_id = k AND j.state = 'running')::integer);
    END IF;
    CONTINUE WHEN room < 1;
    -- first pass: each tenant's first due job
    FOR r IN SELECT j.id FROM tenantry.job j
             WHERE j.tenant_id = k AND j.state = 'queued' AND j.run_at <= now() AND j.name = ANY (names)
             ORDER BY j.run_at, j.created_at LIMIT 1
    LOOP
      served := served + 1;
      c_tenant := c_tenant || k;
      c_id := c_id || r.id;
      c_rank := c_rank || 1;
      c_turn := c_turn || served;
      v_tenant := v_tenant || k;
      v_room := v_room || room;
      v_first := v_first || r.id;
    END LOOP;
  END LOOP;

  -- second pass, when fewer tenants than capacity had work: their next jobs, in turn
  IF served < capacity THEN
    FOR i IN 1 .. served LOOP
      CONTINUE WHEN v_room[i] < 2;
      n := 1;
      FOR r IN SELECT j.id FROM tenantry.job j
               WHERE j.tenant_id = v_tenant[i] AND j.state = 'queued' AND j.run_at <= now() AND j.name = ANY (names)
                 AND j.id <> v_first[i]
               ORDER BY j.run_at, j.created_at LIMIT least(v_room[i], capacity) - 1
      LOOP
        n := n + 1;
        c_tenant := c_tenant || v_tenant[i];
        c_id := c_id || r.id;
        c_rank := c_rank || n;
        c_turn := c_turn || i;
      END LOOP;
    END LOOP;
  END IF;

  IF served > 0 THEN
    RETURN QUERY
    WITH cand AS (
      SELECT c.tenant_id, c.id FROM unnest(c_tenant, c_id, c_rank, c_turn) AS c(tenant_id, id, rank, turn)
      ORDER BY c.rank, c.turn LIMIT capacity
    ), locked AS (
      SELECT j.tenant_id, j.id FROM tenantry.job j JOIN cand ON cand.tenant_id = j.tenant_id AND cand.id = j.id
      WHERE j.state = 'queued' AND j.run_at <= now()
      FOR UPDATE OF j SKIP LOCKED
    )
    UPDATE tenantry.job j
    SET state = 'running', attempts = j.attempts + 1, lease_token = gen_random_uuid(),
        lease_until = now() + lease, updated_at = now()
    FROM locked
    WHERE j.tenant_id = locked.tenant_id AND j.id = locked.id
    RETURNING j.tenant_id, j.id, j.name, j.payload, j.attempts, j.max_attempts, j.lease_token, j.run_at, j.created_at;
  END IF;
  job_tenant := t;
  job_id := NULL;
  RETURN NEXT;
END
$fn$;
REVOKE ALL ON FUNCTION tenantry.job_claim(text[], integer, integer, integer, interval, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenantry.job_claim(text[], integer, integer, integer, interval, integer) TO {{maint}};
