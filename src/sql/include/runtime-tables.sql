-- Shared by the catalog (migration 018) and every database tenant's data plane: the per-tenant
-- tables of tenantry's runtime services (src/runtime, docs/runtime.md). Each tenant's rows live
-- where its other rows live: shared tenants in schema tenantry of the catalog database, schema
-- tenants in their data schema (tables prefixed tenantry_), database tenants in schema tenantry
-- of their own database. Every table is a multi-tenant table: tenant column first in the
-- primary key, defaulting to the current tenant, forced row-level security with the same policy
-- as registered tables, rows removed with the tenant: by a foreign key ON DELETE CASCADE in schema
-- tenantry (adding one locks tenantry.tenant, which concurrent tenant creations would deadlock
-- on, so a schema tenant's tables, dropped with its schema, have none).
--
--   job         queued, running (leased), failed and cancelled jobs; uuid ids (a global
--               sequence would let one tenant count another's jobs)
--   event       the outbox: one row per event, numbered per tenant by event_head
--   event_head  the last position given out; taken under its row lock, so positions follow
--               commit order
--   id_counter  the hi/lo counters of id generators, one per (tenant, entity)
CREATE OR REPLACE FUNCTION tenantry.runtime_install(target_schema name, prefix text, app_role name,
                                                    maint_role name, owner_role name)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  expr   text := tenantry.tenant_expr(app_role);
  policy text := format('tenant_id = (SELECT %s)', tenantry.tenant_expr(app_role));
  fk     text := CASE WHEN target_schema = 'tenantry' THEN 'REFERENCES tenantry.tenant (id) ON DELETE CASCADE' ELSE '' END;
  tbl    text;
  rel    text;
BEGIN
  IF prefix !~ '^[a-z_]{0,20}$' THEN
    RAISE EXCEPTION 'tenantry.runtime_install: bad prefix %', prefix USING ERRCODE = '22023';
  END IF;
  -- concurrent installers of one schema (first use in two processes) wait for each other
  PERFORM pg_advisory_xact_lock(hashtext('tenantry.runtime_install'), hashtext(target_schema));
  EXECUTE format($$CREATE TABLE IF NOT EXISTS %I.%I (
      tenant_id    integer NOT NULL DEFAULT %s %s,
      id           uuid NOT NULL DEFAULT gen_random_uuid(),
      name         text NOT NULL,
      payload      jsonb NOT NULL DEFAULT 'null',
      state        text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'failed', 'cancelled')),
      run_at       timestamptz NOT NULL DEFAULT now(),
      attempts     integer NOT NULL DEFAULT 0,
      max_attempts integer NOT NULL DEFAULT 5 CHECK (max_attempts BETWEEN 1 AND 1000),
      lease_token  uuid,
      lease_until  timestamptz,
      last_error   text,
      created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
      updated_at   timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (tenant_id, id))$$, target_schema, prefix || 'job', expr, fk);
  EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %I.%I (tenant_id, run_at, created_at) WHERE state = ''queued''',
                 prefix || 'job_due', target_schema, prefix || 'job');
  EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %I.%I (tenant_id, lease_until) WHERE state = ''running''',
                 prefix || 'job_running', target_schema, prefix || 'job');
  EXECUTE format($$CREATE TABLE IF NOT EXISTS %I.%I (
      tenant_id  integer NOT NULL DEFAULT %s %s,
      position   bigint NOT NULL CHECK (position > 0),
      type       text NOT NULL,
      payload    jsonb NOT NULL DEFAULT 'null',
      created_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (tenant_id, position))$$, target_schema, prefix || 'event', expr, fk);
  EXECUTE format($$CREATE TABLE IF NOT EXISTS %I.%I (
      tenant_id integer NOT NULL DEFAULT %s %s,
      position  bigint NOT NULL,
      PRIMARY KEY (tenant_id))$$, target_schema, prefix || 'event_head', expr, fk);
  EXECUTE format($$CREATE TABLE IF NOT EXISTS %I.%I (
      tenant_id integer NOT NULL DEFAULT %s %s,
      entity    text NOT NULL CHECK (entity ~ '^[A-Za-z][A-Za-z0-9_.:-]{0,62}$'),
      value     bigint NOT NULL,
      PRIMARY KEY (tenant_id, entity))$$, target_schema, prefix || 'id_counter', expr, fk);
  FOREACH tbl IN ARRAY ARRAY['job', 'event', 'event_head', 'id_counter'] LOOP
    rel := format('%I.%I', target_schema, prefix || tbl);
    IF owner_role IS NOT NULL THEN
      EXECUTE format('ALTER TABLE %s OWNER TO %I', rel, owner_role);
    END IF;
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', rel);
    EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', rel);
    EXECUTE format('DROP POLICY IF EXISTS tenantry_isolation ON %s', rel);
    EXECUTE format('CREATE POLICY tenantry_isolation ON %s FOR ALL USING (%s) WITH CHECK (%s)', rel, policy, policy);
    EXECUTE format('REVOKE ALL ON %s FROM PUBLIC', rel);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO %I', rel, app_role);
    IF maint_role IS NOT NULL THEN
      EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO %I', rel, maint_role);
    END IF;
  END LOOP;
  IF owner_role IS NOT NULL AND target_schema <> 'tenantry' THEN
    -- tenantry.next_id() runs as the owner and reaches a schema tenant's counters
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', target_schema, owner_role);
  END IF;
END
$fn$;
REVOKE ALL ON FUNCTION tenantry.runtime_install(name, text, name, name, name) FROM PUBLIC;
