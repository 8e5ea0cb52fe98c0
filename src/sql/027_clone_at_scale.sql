-- runs as: installer (creating functions as the owner trips 017's routine guard, as in 019 and 025)
-- tenantry catalog, version 27: creating a schema tenant no longer slows down with the number of
-- schema tenants (issue #10's `provision` goal). tenantry.clone_schema (025) found each
-- registered table by joining pg_class on its name, which matched every tenant's copy of it;
-- with 220 schema tenants of 20 tables three of its look-ups took 14–19 ms each (25 ms with
-- 480), and the template's sequences were found by a scan of pg_class. See clone-schema.sql.

-- @include clone-schema.sql
