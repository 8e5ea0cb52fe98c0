-- tenantry catalog, version 23: storage areas (seed 004's areas). A schema or database tenant
-- can be placed in a PostgreSQL tablespace of its server; NULL means the database's default.
ALTER TABLE tenantry.tenant ADD COLUMN tablespace name;

-- Moves every table, materialized view and index of the given schemas into tablespace `target`
-- (TOAST tables follow their table); answers how many relations it moved. Each
-- ALTER … SET TABLESPACE takes an ACCESS EXCLUSIVE lock on its table and copies its files, so
-- the tenant's statements wait until the transaction that calls this commits. Runs as its
-- caller, who must own the relations (or be superuser) and have CREATE on the tablespace.
CREATE FUNCTION tenantry.move_to_tablespace(schemas name[], target name) RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  r      record;
  spc    oid := (SELECT t.oid FROM pg_tablespace t WHERE t.spcname = target);
  dflt   oid := (SELECT d.dattablespace FROM pg_database d WHERE d.datname = current_database());
  moved  integer := 0;
BEGIN
  IF spc IS NULL THEN
    RAISE EXCEPTION USING ERRCODE = '42704',
      MESSAGE = format('TENANTRY_ERR_TABLESPACE_NOT_FOUND: tablespace %s does not exist', target);
  END IF;
  FOR r IN
    SELECT c.oid::regclass AS rel, c.relkind
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = ANY (schemas)
      AND c.relkind IN ('r', 'm', 'i', 'p')
      -- reltablespace 0 is the database's default tablespace
      AND coalesce(nullif(c.reltablespace, 0), dflt) <> spc
    ORDER BY c.relkind <> 'r', c.oid
  LOOP
    EXECUTE format('ALTER %s %s SET TABLESPACE %I',
                   CASE r.relkind WHEN 'i' THEN 'INDEX' WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'TABLE' END,
                   r.rel, target);
    moved := moved + 1;
  END LOOP;
  RETURN moved;
END
$fn$;
REVOKE ALL ON FUNCTION tenantry.move_to_tablespace(name[], name) FROM PUBLIC;
