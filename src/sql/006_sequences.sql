-- tenantry catalog, version 6: multi-tenant and shared sequences (seed 004).

-- @include sequences.sql

GRANT EXECUTE ON FUNCTION tenantry.next(text) TO {{app}}, {{global}};
GRANT SELECT ON tenantry.sequence TO {{maint}};
GRANT SELECT, INSERT, UPDATE, DELETE ON tenantry.sequence_value TO {{maint}};

CREATE TRIGGER sequence_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenantry.sequence
  FOR EACH STATEMENT EXECUTE FUNCTION tenantry.announce_change();
