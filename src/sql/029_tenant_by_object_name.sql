-- runs as: installer (creating functions as the owner trips 017's routine guard, as in 019 and 025)
-- tenantry catalog, version 29: the tenant a schema belongs to is found by the uuid in the
-- schema's name (`tenantry_t_<uuid hex>`, `tenantry_f_<uuid hex>`), one probe of the uuid
-- index. tenantry.clone_schema (each new schema tenant) and the tenant-view guard of the DDL
-- event trigger (each view a tenant creates) compared every tenant's uuid, rewritten as text,
-- with the schema name: a scan of the tenant table, ≈ 28 ms at 100,000 tenants.

-- @include clone-schema.sql

-- @include tenant-views.sql
