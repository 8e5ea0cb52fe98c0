-- tenantry catalog, version 21: online tenant moves (docs/fleet.md, "Online move").
--
-- placement_epoch counts a tenant's moves. The application role's transaction prelude for a
-- shared or schema tenant only sets the tenant when the epoch it routed by is still the
-- catalog's (tenantry.enter_checked): a process whose catalog cache has not yet seen a move
-- cannot write to the copy the tenant left, whatever happened to its notifications.
ALTER TABLE tenantry.tenant ADD COLUMN placement_epoch integer NOT NULL DEFAULT 0;
GRANT SELECT (id, placement_epoch) ON tenantry.tenant TO {{app}};

-- Raised (SQLSTATE TN001) by the prelude when the caller routed by an old placement; the library
-- turns it into TENANTRY_ERR_TENANT_MOVED after reloading the tenant. Volatile, so the planner
-- never evaluates it ahead of the CASE that guards it.
CREATE FUNCTION tenantry.placement_moved(tenant_id integer) RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
  RAISE EXCEPTION 'tenantry: tenant % was moved to another placement; retry', tenant_id
    USING ERRCODE = 'TN001', HINT = 'The catalog changed under this transaction; run it again.';
END
$fn$;
REVOKE ALL ON FUNCTION tenantry.placement_moved(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenantry.placement_moved(integer) TO {{app}};

-- One row per move under way: where from, where to, the phase reached and what was measured.
-- A rerun of `tenantry tenant move` resumes from here; `--abort` rolls back from here.
CREATE TABLE tenantry.tenant_move (
  tenant_id  integer PRIMARY KEY REFERENCES tenantry.tenant (id) ON DELETE CASCADE,
  source     jsonb NOT NULL,
  target     jsonb NOT NULL,
  phase      text NOT NULL CHECK (phase IN ('prepare', 'copy', 'catchup', 'cleanup')),
  applied    bigint NOT NULL DEFAULT 0,
  stats      jsonb NOT NULL DEFAULT '{}',
  started_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON tenantry.tenant_move FROM PUBLIC;
