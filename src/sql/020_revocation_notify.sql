-- tenantry catalog, version 20: revocations announce themselves like every catalog change, so
-- processes can hold the revoked token ids in memory (RevocationCache) and still refuse a revoked
-- token within the notification's delay.
CREATE TRIGGER token_revocation_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenantry.token_revocation
  FOR EACH STATEMENT EXECUTE FUNCTION tenantry.announce_change();
