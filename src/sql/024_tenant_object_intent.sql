-- tenantry catalog, version 24: objects of a tenant made or removed outside a catalog transaction.
--
-- A database tenant's role and database are created on its server before its catalog row
-- (CREATE DATABASE cannot run in a transaction), and dropped after the row is gone. Each such
-- object is recorded here first (committed), and the record is deleted in the same transaction
-- that inserts the tenant row, or once the object was dropped. A record whose tenant does not
-- exist is therefore a leftover of a process that died half-way: `tenantry tenant repair`
-- removes its objects. While a process works on a tenant's objects it holds the session-level
-- advisory lock (1952803950, hashtext(tenant_uuid::text)) on the catalog database, so repair
-- leaves work in progress alone.
CREATE TABLE tenantry.tenant_object_intent (
  server      text NOT NULL,
  kind        text NOT NULL CHECK (kind IN ('database', 'role')),
  name        name NOT NULL,
  tenant_uuid uuid NOT NULL,
  action      text NOT NULL CHECK (action IN ('create', 'drop')),
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (server, kind, name)
);
CREATE INDEX tenant_object_intent_tenant ON tenantry.tenant_object_intent (tenant_uuid);
REVOKE ALL ON tenantry.tenant_object_intent FROM PUBLIC;
