-- The event triggers of a database tenant's own objects (tenant-objects.sql): Phoenix's rules for
-- tenant views and the guards on code a tenant writes, as in the catalog. Needs a superuser; run
-- at creation and by every sync (idempotent).

-- @include tenant-views-triggers.sql

-- @include tenant-code-triggers.sql
