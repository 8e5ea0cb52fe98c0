-- tenantry catalog, version 30: revocations are stored in lower case. Token ids are issued in
-- lower case and looked up exactly, but revoke() used to store an id as typed, so a revocation
-- typed in upper case never took effect. Existing ones are folded here (revoke() now folds).
INSERT INTO tenantry.token_revocation (id, expires_at)
SELECT lower(id), max(expires_at) FROM tenantry.token_revocation WHERE id <> lower(id) GROUP BY lower(id)
ON CONFLICT (id) DO UPDATE SET expires_at = greatest(tenantry.token_revocation.expires_at, EXCLUDED.expires_at);
DELETE FROM tenantry.token_revocation WHERE id <> lower(id);
