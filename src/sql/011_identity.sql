-- tenantry catalog, version 11: sign-on (seed 004's domains, users and CLIENT-PRINCIPAL).
--
-- A domain belongs to one tenant and names how its users authenticate: 'builtin' (the users
-- below, with scrypt password hashes) or an authenticator registered in the application. Its
-- access code is sealed in tenantry.credential (owner 'domain:<name>', field 'access-code').
-- The blank domain '' belongs to the default tenant and always exists: a user named without
-- '@domain' lives there.

CREATE TABLE tenantry.domain (
  name         text PRIMARY KEY CHECK (name = lower(name)),
  display_name text NOT NULL CHECK (lower(display_name) = name),
  tenant_id    integer NOT NULL REFERENCES tenantry.tenant (id) ON DELETE CASCADE,
  auth_system  text NOT NULL DEFAULT 'builtin' CHECK (auth_system ~ '^[a-z][a-z0-9_-]{0,62}$'),
  created_at   timestamptz NOT NULL DEFAULT now(),
  CHECK (name = '' OR name ~ '^[a-z][a-z0-9_.-]{0,62}$')
);
CREATE INDEX domain_tenant ON tenantry.domain (tenant_id);
INSERT INTO tenantry.domain (name, display_name, tenant_id) VALUES ('', '', 0);

-- Users of a domain. The key is (domain, lower(name)), kept as a stored column so a login is a
-- primary-key lookup. password_hash is 'scrypt$N$r$p$salt$hash' (base64); it is NULL for users
-- of a domain whose authenticator checks passwords elsewhere.
CREATE TABLE tenantry.app_user (
  domain        text NOT NULL REFERENCES tenantry.domain (name) ON DELETE CASCADE,
  name          text NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.+-]{0,62}$'),
  name_key      text GENERATED ALWAYS AS (lower(name)) STORED,
  password_hash text CHECK (password_hash LIKE 'scrypt$%'),
  permission    text NOT NULL DEFAULT 'write' CHECK (permission IN ('read', 'write', 'admin')),
  created_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (domain, name_key)
);

-- A removed domain (directly, or with its tenant) takes its sealed access code with it.
CREATE FUNCTION tenantry.forget_domain_secrets() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM tenantry.credential WHERE owner = 'domain:' || OLD.name;
  RETURN NULL;
END $$;
CREATE TRIGGER domain_secrets_forgotten AFTER DELETE ON tenantry.domain
  FOR EACH ROW EXECUTE FUNCTION tenantry.forget_domain_secrets();

CREATE TRIGGER domain_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenantry.domain
  FOR EACH STATEMENT EXECUTE FUNCTION tenantry.announce_change();
CREATE TRIGGER app_user_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenantry.app_user
  FOR EACH STATEMENT EXECUTE FUNCTION tenantry.announce_change();

REVOKE ALL ON tenantry.domain, tenantry.app_user FROM PUBLIC;
REVOKE ALL ON FUNCTION tenantry.forget_domain_secrets() FROM PUBLIC;
