-- runs as: installer (triggers on the catalog's tables, as the owner of the trigger functions)
-- tenantry catalog, version 28: processes re-read only the tenants that changed.
--
-- Every catalog change made each process re-read every tenant: at 100,000 tenants one re-read
-- took ≈ 0.8 s and 0.6 s of CPU per process, for each tenant created, user added or token
-- revoked. Now each tenant row carries the transaction id of its last change (changed_xid) and
-- each removed tenant leaves a tombstone. A process remembers the oldest transaction still
-- running when it last read the catalog (its snapshot's xmin): every change it did not see was
-- made by a transaction at least that old, so it re-reads the rows whose changed_xid is at least
-- that, and drops the tombstoned ones. Tombstones are kept for 7 days; the catalog poll re-reads
-- everything (docs/concepts.md, "Catalog cache").
ALTER TABLE tenantry.tenant ADD COLUMN changed_xid xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX tenant_changed_xid ON tenantry.tenant (changed_xid);

CREATE FUNCTION tenantry.mark_tenant_changed() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  NEW.changed_xid := pg_current_xact_id();
  RETURN NEW;
END $$;
CREATE TRIGGER tenant_mark_changed BEFORE UPDATE ON tenantry.tenant
  FOR EACH ROW EXECUTE FUNCTION tenantry.mark_tenant_changed();

-- A tenant's login role is part of what processes cache of it.
CREATE FUNCTION tenantry.mark_role_tenant_changed() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  UPDATE tenantry.tenant SET changed_xid = pg_current_xact_id()
  WHERE id IN (SELECT tenant_id FROM changed_rows);
  RETURN NULL;
END $$;
CREATE TRIGGER tenant_role_marks_inserted AFTER INSERT ON tenantry.tenant_role
  REFERENCING NEW TABLE AS changed_rows
  FOR EACH STATEMENT EXECUTE FUNCTION tenantry.mark_role_tenant_changed();
CREATE TRIGGER tenant_role_marks_deleted AFTER DELETE ON tenantry.tenant_role
  REFERENCING OLD TABLE AS changed_rows
  FOR EACH STATEMENT EXECUTE FUNCTION tenantry.mark_role_tenant_changed();
CREATE TRIGGER tenant_role_marks_updated_old AFTER UPDATE ON tenantry.tenant_role
  REFERENCING OLD TABLE AS changed_rows
  FOR EACH STATEMENT EXECUTE FUNCTION tenantry.mark_role_tenant_changed();
CREATE TRIGGER tenant_role_marks_updated_new AFTER UPDATE ON tenantry.tenant_role
  REFERENCING NEW TABLE AS changed_rows
  FOR EACH STATEMENT EXECUTE FUNCTION tenantry.mark_role_tenant_changed();

-- Removed tenants (id NULL: the table was truncated, everyone re-reads everything).
CREATE TABLE tenantry.tenant_removed (
  id          integer,
  removed_xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
  removed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tenant_removed_xid ON tenantry.tenant_removed (removed_xid);
CREATE INDEX tenant_removed_at ON tenantry.tenant_removed (removed_at);
REVOKE ALL ON tenantry.tenant_removed FROM PUBLIC;
GRANT SELECT ON tenantry.tenant_removed TO {{maint}};

CREATE FUNCTION tenantry.record_tenant_removed() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    INSERT INTO tenantry.tenant_removed (id) VALUES (NULL);
  ELSE
    INSERT INTO tenantry.tenant_removed (id) SELECT o.id FROM removed_rows o;
  END IF;
  DELETE FROM tenantry.tenant_removed WHERE removed_at < now() - interval '7 days';
  RETURN NULL;
END $$;
CREATE TRIGGER tenant_record_removed AFTER DELETE ON tenantry.tenant
  REFERENCING OLD TABLE AS removed_rows
  FOR EACH STATEMENT EXECUTE FUNCTION tenantry.record_tenant_removed();
CREATE TRIGGER tenant_record_truncated AFTER TRUNCATE ON tenantry.tenant
  FOR EACH STATEMENT EXECUTE FUNCTION tenantry.record_tenant_removed();
