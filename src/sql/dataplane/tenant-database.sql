-- The data plane of a database tenant: the slice of the catalog its own database needs so that
-- row-level security, tenantry.current_tenant(), tenant_id() and tenant_name() work there as in
-- the catalog database. Placeholders: {{app}}, {{role}} (identifiers), {{id}}, {{uuid}},
-- {{name}}, {{role_literal}} (literals), {{database}}, {{face}} (identifiers).
CREATE SCHEMA tenantry;
REVOKE ALL ON SCHEMA tenantry FROM PUBLIC;

CREATE TABLE tenantry.tenant (id integer PRIMARY KEY, uuid uuid NOT NULL UNIQUE, name text NOT NULL);
INSERT INTO tenantry.tenant (id, uuid, name) VALUES ({{id}}, {{uuid}}, {{name}});

CREATE TABLE tenantry.tenant_role (
  role_name name PRIMARY KEY,
  tenant_id integer NOT NULL REFERENCES tenantry.tenant (id)
);
INSERT INTO tenantry.tenant_role (role_name, tenant_id) VALUES ({{role_literal}}, {{id}});
REVOKE ALL ON tenantry.tenant, tenantry.tenant_role FROM PUBLIC;

-- @include current-tenant.sql

REVOKE ALL ON FUNCTION tenantry.current_tenant(), tenantry.tenant_id(), tenantry.tenant_name() FROM PUBLIC;
GRANT USAGE ON SCHEMA tenantry TO {{app}}, {{role}};
GRANT EXECUTE ON FUNCTION tenantry.current_tenant(), tenantry.tenant_id(), tenantry.tenant_name() TO {{app}}, {{role}};

REVOKE ALL ON DATABASE {{database}} FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE {{database}} TO {{app}}, {{role}};
-- Base tables (and the global tables' foreign tables) live in their own schemas, which only
-- tenantry's roles may name; the tenant reaches them through the views in tenantry_v.
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO {{app}};
CREATE SCHEMA tenantry_v;
REVOKE ALL ON SCHEMA tenantry_v FROM PUBLIC;
GRANT USAGE ON SCHEMA tenantry_v TO {{app}}, {{role}};
CREATE SCHEMA {{face}};
REVOKE ALL ON SCHEMA {{face}} FROM PUBLIC;
GRANT USAGE, CREATE ON SCHEMA {{face}} TO {{app}};
GRANT USAGE, CREATE ON SCHEMA {{face}} TO {{role}};
ALTER ROLE {{role}} IN DATABASE {{database}} SET search_path = {{face}}, tenantry_v;

-- @include facing-views.sql

-- @include sequences.sql
GRANT EXECUTE ON FUNCTION tenantry.next(text) TO {{app}}, {{role}};

-- Runtime services (src/runtime): jobs, events, id counters in this database.
-- @include runtime-tables.sql
-- @include runtime-dataplane.sql
