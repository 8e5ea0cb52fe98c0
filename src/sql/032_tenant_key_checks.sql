-- runs as: installer (creating functions as the owner trips 017's routine guard, as in 019 and 025)
-- tenantry catalog, version 32: tenantry.multi_tenant refuses the remaining key shapes that let
-- one tenant probe another's keys through a constraint violation. Version 3 looked at unique
-- indexes and the referencing side of foreign keys only; it missed
--   * a unique index whose tenant column is only an INCLUDE column (uniqueness is on the rest);
--   * unique indexes of a partitioned table's partitions;
--   * exclusion constraints (indisunique is false for them) without `tenant column WITH =`;
--   * foreign keys whose referenced side does not start with that table's tenant column
--     (PostgreSQL matches the referenced key in any column order: (tenant_id, customer_id)
--     REFERENCES customer (id, tenant_id) compares orders.tenant_id with customer.id).
-- The checks are tenantry.check_tenant_keys(); multi_tenant() runs them, then version 3's body.
-- It also refuses while a tenant move is under way: the move copies the tables registered when
-- it started, and its cleanup would delete the moving tenant's rows of a table registered since,
-- which it never copied.

CREATE FUNCTION tenantry.check_tenant_keys(target regclass, tenant_col name) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  qualified text := target::text;
  bad       record;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = target AND a.attname = tenant_col AND NOT a.attisdropped) THEN
    RETURN;  -- version 3's check explains that
  END IF;

  -- Unique indexes of the table and of all its partitions: the tenant column among the key columns.
  SELECT i.indexrelid::regclass AS idx INTO bad
  FROM (SELECT target::oid AS relid UNION SELECT t.relid FROM pg_partition_tree(target) t) p
  JOIN pg_index i ON i.indrelid = p.relid
  WHERE i.indisunique
    AND NOT EXISTS (SELECT 1 FROM generate_series(0, i.indnkeyatts - 1) AS s(n)
                    JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[s.n]
                    WHERE a.attname = tenant_col)
  LIMIT 1;
  IF bad.idx IS NOT NULL THEN
    RAISE EXCEPTION 'TENANTRY_ERR_TABLE_SHAPE: %: unique index % does not include the tenant column % among its key columns; its violations would tell one tenant that another has a key.', qualified, bad.idx, tenant_col
      USING ERRCODE = '42P16', HINT = format('Recreate it with %I as its first key column (an INCLUDE column does not count).', tenant_col);
  END IF;

  -- Exclusion constraints: the tenant column compared with = (so rows of two tenants never conflict).
  SELECT con.conname, con.conrelid::regclass AS rel INTO bad
  FROM (SELECT target::oid AS relid UNION SELECT t.relid FROM pg_partition_tree(target) t) p
  JOIN pg_constraint con ON con.conrelid = p.relid AND con.contype = 'x'
  WHERE NOT EXISTS (SELECT 1 FROM unnest(con.conkey, con.conexclop) AS k(attnum, op)
                    JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
                    JOIN pg_operator o ON o.oid = k.op
                    WHERE a.attname = tenant_col AND o.oprname = '=')
  LIMIT 1;
  IF bad.conname IS NOT NULL THEN
    RAISE EXCEPTION 'TENANTRY_ERR_TABLE_SHAPE: %: exclusion constraint % on % does not compare the tenant column % with =; its violations would tell one tenant about another''s rows.', qualified, bad.conname, bad.rel, tenant_col
      USING ERRCODE = '42P16', HINT = format('Add (%I WITH =) to it (btree_gist provides = for integers in a GiST index).', tenant_col);
  END IF;

  -- Foreign keys from or to the table: both sides start with their table's tenant column.
  SELECT con.conname, con.conrelid::regclass AS from_table, con.confrelid::regclass AS to_table INTO bad
  FROM pg_constraint con
  JOIN pg_attribute fa ON fa.attrelid = con.conrelid AND fa.attnum = con.conkey[1]
  JOIN pg_attribute ta ON ta.attrelid = con.confrelid AND ta.attnum = con.confkey[1]
  LEFT JOIN pg_class tc ON tc.oid = con.confrelid
  LEFT JOIN pg_namespace tn ON tn.oid = tc.relnamespace
  LEFT JOIN tenantry.registered_table r
    ON r.kind = 'multi_tenant' AND r.schema_name = tn.nspname AND r.table_name = tc.relname
  WHERE con.contype = 'f'
    AND (con.conrelid = target OR con.confrelid = target)
    AND NOT (con.conrelid = target AND con.confrelid = 'tenantry.tenant'::regclass)
    AND (con.confrelid = target OR r.table_name IS NOT NULL)
    AND ta.attname <> CASE WHEN con.confrelid = target THEN tenant_col ELSE r.tenant_column END
  LIMIT 1;
  IF bad.conname IS NOT NULL THEN
    RAISE EXCEPTION 'TENANTRY_ERR_TABLE_SHAPE: %: foreign key % (% -> %) does not reference the tenant column first; its checks would compare one tenant''s rows with another''s.', qualified, bad.conname, bad.from_table, bad.to_table
      USING ERRCODE = '42P16', HINT = 'Make the tenant column the first column on both sides of the foreign key.';
  END IF;
END
$fn$;
REVOKE ALL ON FUNCTION tenantry.check_tenant_keys(regclass, name) FROM PUBLIC;

ALTER FUNCTION tenantry.multi_tenant(regclass, name) RENAME TO multi_tenant_v3;

-- Declares schema.table multi-tenant (see version 3): the key checks above, then version 3's body.
CREATE FUNCTION tenantry.multi_tenant(target regclass, tenant_column name DEFAULT 'tenant_id')
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  moving text;
BEGIN
  SELECT t.name INTO moving FROM tenantry.tenant_move m JOIN tenantry.tenant t ON t.id = m.tenant_id
  ORDER BY m.tenant_id LIMIT 1;
  IF moving IS NOT NULL THEN
    RAISE EXCEPTION 'TENANTRY_ERR_MOVE_IN_PROGRESS: Tenant % is being moved; a table declared multi-tenant now would be left out of its copy. Finish the move (`tenantry tenant move %`) or abort it (--abort) first.', moving, moving
      USING ERRCODE = '55006';
  END IF;
  PERFORM tenantry.check_tenant_keys(target, tenant_column);
  PERFORM tenantry.multi_tenant_v3(target, tenant_column);
END
$fn$;
REVOKE ALL ON FUNCTION tenantry.multi_tenant(regclass, name), tenantry.multi_tenant_v3(regclass, name) FROM PUBLIC;
