-- tenantry catalog, version 13: delegation tokens (seed 000). Revoked token ids are kept until
-- their tokens would have expired anyway; every verification looks its id up here, so a
-- revocation holds on every process at once.
CREATE TABLE tenantry.token_revocation (
  id         text PRIMARY KEY,
  expires_at timestamptz NOT NULL,
  revoked_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX token_revocation_expiry ON tenantry.token_revocation (expires_at);
REVOKE ALL ON tenantry.token_revocation FROM PUBLIC;
