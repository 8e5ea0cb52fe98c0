-- tenantry catalog, version 1: tenants and the table registry.
-- Catalog migrations are append-only from the first published release on.
-- Runs as the owner role {{owner}} inside the installer's transaction; {{app}} and {{maint}}
-- are the tenant-work and maintenance roles (see docs/concepts.md).

CREATE TABLE tenantry.tenant (
  id         integer PRIMARY KEY,
  uuid       uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
  name       text NOT NULL CHECK (name ~ '^[A-Za-z][A-Za-z0-9_.-]{0,62}$'),
  kind       text NOT NULL CHECK (kind IN ('default', 'regular', 'super', 'group')),
  state      text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'disabled', 'locked')),
  isolation  text NOT NULL DEFAULT 'shared' CHECK (isolation IN ('shared', 'schema', 'database')),
  server     text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT tenant_kind_matches_id CHECK (
    (kind = 'default' AND id = 0) OR (kind IN ('regular', 'group') AND id > 0) OR (kind = 'super' AND id < 0)
  )
);
CREATE UNIQUE INDEX tenant_name_key ON tenantry.tenant (lower(name));

CREATE SEQUENCE tenantry.regular_tenant_id AS integer START 1;
CREATE SEQUENCE tenantry.super_tenant_id AS integer START 1;

INSERT INTO tenantry.tenant (id, name, kind) VALUES (0, 'Default', 'default');

CREATE TABLE tenantry.registered_table (
  schema_name   name NOT NULL,
  table_name    name NOT NULL,
  kind          text NOT NULL CHECK (kind IN ('multi_tenant', 'shared')),
  tenant_column name,
  writable      boolean NOT NULL DEFAULT false,
  registered_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (schema_name, table_name),
  CHECK ((kind = 'multi_tenant') = (tenant_column IS NOT NULL))
);

-- Secrets only the installer (and owner) can read: the application role's login password.
CREATE TABLE tenantry.secret (
  name  text PRIMARY KEY,
  value text NOT NULL
);

-- Any change to the catalog is announced on channel tenantry_catalog. The payload is a hint:
-- listeners re-read the catalog, so a stray NOTIFY can cause a re-read and nothing else.
CREATE FUNCTION tenantry.announce_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('tenantry_catalog', TG_TABLE_NAME);
  RETURN NULL;
END $$;

CREATE TRIGGER tenant_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenantry.tenant
  FOR EACH STATEMENT EXECUTE FUNCTION tenantry.announce_change();
CREATE TRIGGER registered_table_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenantry.registered_table
  FOR EACH STATEMENT EXECUTE FUNCTION tenantry.announce_change();

CREATE FUNCTION tenantry.touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at := now();
  RETURN NEW;
END $$;
CREATE TRIGGER tenant_touch BEFORE UPDATE ON tenantry.tenant
  FOR EACH ROW EXECUTE FUNCTION tenantry.touch_updated_at();

REVOKE ALL ON ALL TABLES IN SCHEMA tenantry FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA tenantry FROM PUBLIC;
GRANT USAGE ON SCHEMA tenantry TO {{app}}, {{maint}}, {{global}};
GRANT SELECT ON tenantry.tenant, tenantry.registered_table TO {{maint}};
