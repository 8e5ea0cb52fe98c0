-- A database tenant's rights inside its own database (docs/rights.md), run when the database is
-- created and again by every sync (idempotent). Placeholders: {{app}}, {{role}} (identifiers).

-- @include tenant-rights.sql

GRANT EXECUTE ON FUNCTION tenantry.session_permission() TO {{app}}, {{role}};
-- tenantry.next() writes here for the session's tenant
SELECT tenantry.guard_table('tenantry.sequence_value');
