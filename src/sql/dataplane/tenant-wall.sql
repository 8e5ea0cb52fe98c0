-- The first wall inside a database tenant's own database (docs/rights.md): the DDL guard of
-- read and write users, and the built-ins tenant roles may not use. Needs a superuser; run at
-- creation and by every sync (idempotent). Placeholders: {{app_literal}} (a literal).

-- @include tenant-wall.sql

SELECT tenantry.restrict_builtins(ARRAY[{{app_literal}}]::name[]);
