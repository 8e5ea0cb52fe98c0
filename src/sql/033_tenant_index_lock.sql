-- runs as: installer (the functions alter tenants' base tables, which the operator owns; as in 10)
-- tenantry catalog, version 33: tenantry.create_tenant_index takes a per-table lock before it
-- counts the table's tenant indexes and looks up the new index's name. Concurrent calls could
-- each see room under max_tenant_indexes_per_table and all create their index (past the cap), or
-- race on the same name (a raw 42P07). The functions of 10 are replaced as a whole.

-- @include tenant-columns.sql
