import pg from 'pg';
import { inTransaction, type CatalogCache, type CatalogRoles, type Tenant } from '../catalog/index.js';
import { TenantryError } from '../errors.js';

/** A group of tenants sharing one data segment of one multi-tenant table (seed 004). */
export interface GroupInfo {
  readonly id: number;
  readonly name: string;
  /** The table, as `schema.table`. */
  readonly table: string;
  readonly members: readonly string[];
}

/** Options of {@link GroupRegistry.create} and {@link GroupRegistry.addMember}. */
export interface MemberOptions {
  /** Move the rows a tenant already has in the table into the group's segment (default false). */
  readonly merge?: boolean;
}

const NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,62}$/;

/**
 * Tenant groups: `create('LowesItm', { table: 'public.item', tenants: ['LowesNY', 'LowesBos'] })`.
 * Members read and write the group's rows of that table, non-members cannot. Groups exist for
 * shared tenants only, and need the table's sequences to be shared ones.
 */
export class GroupRegistry {
  readonly #pool: pg.Pool;
  readonly #cache: CatalogCache;
  readonly #roles: CatalogRoles;

  constructor(pool: pg.Pool, cache: CatalogCache, roles: CatalogRoles) {
    this.#pool = pool;
    this.#cache = cache;
    this.#roles = roles;
  }

  /**
   * Creates a group over `table` with `tenants` as members. Throws `TENANTRY_ERR_GROUP_CONFLICT`
   * when a member has rows in the table (unless `merge`), is not a shared tenant, is in another
   * group for the table, or the table draws numbers from a multi-tenant sequence.
   */
  async create(
    name: string,
    options: { table: string; tenants: readonly string[] } & MemberOptions,
  ): Promise<GroupInfo> {
    if (typeof name !== 'string' || !NAME.test(name)) {
      throw new TenantryError('INVALID_ARGUMENT', {
        what: 'group name',
        problem: `${JSON.stringify(name)} is not a valid name`,
      });
    }
    await this.#transaction(async (client) => {
      const table = await this.#table(client, options.table);
      await this.#refuseTenantSequences(client, table);
      const { rows } = await client
        .query<{ id: number }>(
          `INSERT INTO tenantry.tenant (id, name, kind) VALUES (nextval('tenantry.regular_tenant_id'), $1, 'group') RETURNING id`,
          [name],
        )
        .catch((error: unknown) => {
          if (error instanceof pg.DatabaseError && error.code === '23505') {
            throw new TenantryError('TENANT_EXISTS', { tenant: name }, { cause: error });
          }
          throw error;
        });
      const id = (rows[0] as { id: number }).id;
      await client.query(
        'INSERT INTO tenantry.tenant_group (id, schema_name, table_name) VALUES ($1, $2, $3)',
        [id, table.schema, table.table],
      );
      await client.query('SELECT tenantry.enable_groups($1::regclass, $2)', [table.qualified, table.column]);
      await client.query('SELECT tenantry.add_allocation_policy($1::regclass)', [table.qualified]);
      for (const member of options.tenants)
        await this.#add(client, { id, name, ...table }, member, options.merge === true);
    });
    await this.#cache.reload();
    return this.show(name);
  }

  /** Adds a tenant to a group (see {@link create} for the rules). */
  async addMember(group: string, tenant: string, options: MemberOptions = {}): Promise<GroupInfo> {
    await this.#transaction(async (client) => {
      const info = await this.#group(client, group);
      await this.#add(client, info, tenant, options.merge === true);
    });
    await this.#cache.reload();
    return this.show(group);
  }

  /** Removes a tenant from a group; the group's rows stay with the group. */
  async removeMember(group: string, tenant: string): Promise<GroupInfo> {
    const info = await this.#group(this.#pool, group);
    const member = this.#tenant(tenant);
    await this.#pool.query('DELETE FROM tenantry.group_member WHERE group_id = $1 AND tenant_id = $2', [
      info.id,
      member.id,
    ]);
    await this.#cache.reload();
    return this.show(group);
  }

  /** One group with its members; throws `TENANTRY_ERR_TENANT_NOT_FOUND` for an unknown group. */
  async show(name: string): Promise<GroupInfo> {
    const found = (await this.list()).find((g) => g.name.toLowerCase() === String(name).toLowerCase());
    if (!found) throw new TenantryError('TENANT_NOT_FOUND', { tenant: String(name) });
    return found;
  }

  /** Every group. */
  async list(): Promise<GroupInfo[]> {
    const { rows } = await this.#pool.query<GroupInfo>(
      `SELECT g.id, t.name, format('%I.%I', g.schema_name, g.table_name) AS table,
              coalesce(array_agg(m.name ORDER BY m.name) FILTER (WHERE m.name IS NOT NULL), '{}') AS members
       FROM tenantry.tenant_group g JOIN tenantry.tenant t ON t.id = g.id
       LEFT JOIN tenantry.group_member gm ON gm.group_id = g.id
       LEFT JOIN tenantry.tenant m ON m.id = gm.tenant_id
       GROUP BY g.id, t.name ORDER BY t.name`,
    );
    return rows;
  }

  /** Deletes a group and its rows (needs `{ force: true }`). */
  async drop(name: string, options: { force?: boolean } = {}): Promise<number> {
    if (options.force !== true) throw new TenantryError('FORCE_REQUIRED', { operation: 'Dropping a group' });
    let deleted = 0;
    await this.#transaction(async (client) => {
      const info = await this.#group(client, name);
      await client.query(`SET LOCAL ROLE ${pg.escapeIdentifier(this.#roles.maint)}`);
      const r = await client.query(
        `DELETE FROM ${info.qualified} WHERE ${pg.escapeIdentifier(info.column)} = $1`,
        [info.id],
      );
      deleted = r.rowCount ?? 0;
      await client.query('RESET ROLE');
      await client.query('DELETE FROM tenantry.tenant WHERE id = $1', [info.id]);
    });
    await this.#cache.reload();
    return deleted;
  }

  async #add(
    client: pg.ClientBase,
    group: { id: number; name: string; schema: string; table: string; qualified: string; column: string },
    ref: string,
    merge: boolean,
  ): Promise<void> {
    const tenant = this.#tenant(ref);
    const action = `add ${tenant.name} to group ${group.name}`;
    if (tenant.kind !== 'regular' || tenant.isolation !== 'shared') {
      throw new TenantryError('GROUP_CONFLICT', {
        action,
        problem: 'groups hold shared, regular tenants only (not schema or database tenants)',
      });
    }
    const other = await client.query<{ name: string }>(
      `SELECT t.name FROM tenantry.group_member m JOIN tenantry.tenant t ON t.id = m.group_id
       WHERE m.tenant_id = $1 AND m.schema_name = $2 AND m.table_name = $3`,
      [tenant.id, group.schema, group.table],
    );
    if (other.rows[0]) {
      throw new TenantryError('GROUP_CONFLICT', {
        action,
        problem: `it is already in group ${other.rows[0].name} for ${group.schema}.${group.table}`,
      });
    }
    await client.query(`SET LOCAL ROLE ${pg.escapeIdentifier(this.#roles.maint)}`);
    const column = pg.escapeIdentifier(group.column);
    const { rows } = await client.query<{ n: string }>(
      `SELECT count(*) AS n FROM ${group.qualified} WHERE ${column} = $1`,
      [tenant.id],
    );
    if (Number(rows[0]?.n) > 0) {
      if (!merge) {
        throw new TenantryError('GROUP_CONFLICT', {
          action,
          problem: `${tenant.name} already has ${rows[0]?.n} row(s) in ${group.schema}.${group.table}; pass merge to move them into the group's segment`,
        });
      }
      await client.query(`UPDATE ${group.qualified} SET ${column} = $1 WHERE ${column} = $2`, [
        group.id,
        tenant.id,
      ]);
    }
    await client.query('RESET ROLE');
    await client.query(
      'INSERT INTO tenantry.group_member (group_id, tenant_id, schema_name, table_name) VALUES ($1, $2, $3, $4)',
      [group.id, tenant.id, group.schema, group.table],
    );
  }

  #tenant(ref: string): Tenant {
    const tenant = this.#cache.get(ref);
    if (!tenant || tenant.kind === 'group')
      throw new TenantryError('TENANT_NOT_FOUND', { tenant: String(ref) });
    return tenant;
  }

  async #table(client: Pick<pg.ClientBase, 'query'>, table: string) {
    const { rows } = await client.query<{ schema: string; table: string; column: string }>(
      `SELECT r.schema_name AS schema, r.table_name AS table, r.tenant_column AS column
       FROM tenantry.registered_table r
       WHERE r.kind = 'multi_tenant' AND format('%I.%I', r.schema_name, r.table_name)::regclass = to_regclass($1)`,
      [table],
    );
    const row = rows[0];
    if (!row)
      throw new TenantryError('TABLE_SHAPE', { table, problem: 'it is not a registered multi-tenant table' });
    return { ...row, qualified: `${pg.escapeIdentifier(row.schema)}.${pg.escapeIdentifier(row.table)}` };
  }

  async #group(client: Pick<pg.ClientBase, 'query'>, name: string) {
    const { rows } = await client.query<{
      id: number;
      name: string;
      schema: string;
      table: string;
      column: string;
    }>(
      `SELECT g.id, t.name, g.schema_name AS schema, g.table_name AS table, r.tenant_column AS column
       FROM tenantry.tenant_group g JOIN tenantry.tenant t ON t.id = g.id
       JOIN tenantry.registered_table r ON r.schema_name = g.schema_name AND r.table_name = g.table_name
       WHERE lower(t.name) = lower($1)`,
      [name],
    );
    const row = rows[0];
    if (!row) throw new TenantryError('TENANT_NOT_FOUND', { tenant: String(name) });
    return { ...row, qualified: `${pg.escapeIdentifier(row.schema)}.${pg.escapeIdentifier(row.table)}` };
  }

  /** Groups need shared sequences: a per-tenant counter would hand members duplicate numbers. */
  async #refuseTenantSequences(
    client: Pick<pg.ClientBase, 'query'>,
    table: { qualified: string; table: string },
  ) {
    const { rows } = await client.query<{ column: string; sequence: string }>(
      `SELECT a.attname AS column, s.name AS sequence
       FROM pg_attrdef d JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
       JOIN tenantry.sequence s ON s.kind = 'multi_tenant'
        AND pg_get_expr(d.adbin, d.adrelid) LIKE '%tenantry.next(''' || s.name || '''%'
       WHERE d.adrelid = $1::regclass`,
      [table.qualified],
    );
    if (rows[0]) {
      throw new TenantryError('GROUP_CONFLICT', {
        action: `group ${table.table}`,
        problem: `column ${rows[0].column} draws from the multi-tenant sequence ${rows[0].sequence}; members would get duplicate numbers — use a shared sequence`,
      });
    }
  }

  async #transaction(work: (client: pg.PoolClient) => Promise<void>): Promise<void> {
    return inTransaction(this.#pool, work);
  }
}
