import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { TenantryError } from '../../errors.js';
import { asTenant, type HttpContext } from '../context.js';

interface KeyColumn {
  readonly name: string;
  readonly type: string;
}

/** The ordering key of a registered table as its tenants see it: its primary key without the tenant column. */
async function keyColumns(
  ctx: HttpContext,
  schema: string,
  table: string,
  tenantColumn: string | null,
): Promise<KeyColumn[]> {
  const { rows } = await ctx.tenantry.operator.query<{ name: string; type: string }>(
    `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type
     FROM pg_index i
     JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) ON true
     JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
     WHERE i.indrelid = format('%I.%I', $1::text, $2::text)::regclass AND i.indisprimary
     ORDER BY k.ord`,
    [schema, table],
  );
  return rows.filter((r) => r.name !== tenantColumn);
}

function decodeCursor(cursor: string, width: number): string[] {
  try {
    const values: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(values) && values.length === width && values.every((v) => typeof v === 'string'))
      return values;
  } catch {
    // fall through
  }
  throw new TenantryError('INVALID_ARGUMENT', {
    what: 'cursor',
    problem: 'it is not a cursor this API returned',
  });
}

/** `GET /v1/tables/:name?limit=&cursor=`: a registered table, as the tenant sees it, in key order. */
export function tableRoute(app: FastifyInstance, ctx: HttpContext, errors: Record<number, unknown>): void {
  app.get(
    '/v1/tables/:name',
    {
      schema: {
        tags: ['tenant data'],
        summary: 'Read a table as the tenant, in primary-key order, a page at a time (cursor pagination).',
        params: {
          type: 'object',
          properties: { name: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_$.]{0,126}$' } },
          required: ['name'],
        },
        querystring: {
          type: 'object',
          properties: {
            limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
            cursor: { type: 'string', maxLength: 4096 },
          },
          additionalProperties: false,
        },
        headers: {
          type: 'object',
          properties: { 'x-tenant-id': { type: 'string' } },
        },
        security: [{ bearer: [] }],
        response: {
          200: {
            type: 'object',
            properties: {
              rows: { type: 'array', items: { type: 'object', additionalProperties: true } },
              nextCursor: { type: ['string', 'null'] },
            },
          },
          ...errors,
        },
      },
    },
    async (request) => {
      const { name } = request.params as { name: string };
      const { limit, cursor } = request.query as { limit: number; cursor?: string };
      // Authenticate before looking anything up, so table names cannot be probed.
      return asTenant(ctx, request, 'fixed', async (db) => {
        const [first, second] = name.split('.');
        const table = ctx.tenantry.tables
          .list()
          .find((t) => (second === undefined ? t.table === first : t.schema === first && t.table === second));
        if (!table) throw new TenantryError('TABLE_NOT_FOUND', { table: name });
        const keys = await keyColumns(ctx, table.schema, table.table, table.tenantColumn);
        if (keys.length === 0)
          throw new TenantryError('INVALID_ARGUMENT', {
            what: 'table',
            problem: `${name} has no primary key to page by`,
          });
        const after = cursor === undefined ? undefined : decodeCursor(cursor, keys.length);
        const list = keys.map((k) => pg.escapeIdentifier(k.name)).join(', ');
        const where =
          after === undefined
            ? ''
            : `WHERE (${list}) > (${keys.map((k, i) => `$${i + 1}::${k.type}`).join(', ')})`;
        const text = `SELECT t.*, ARRAY[${keys.map((k) => `${pg.escapeIdentifier(k.name)}::text`).join(', ')}] AS tenantry_cursor
          FROM ${pg.escapeIdentifier(table.table)} t ${where} ORDER BY ${list} LIMIT ${limit + 1}`;
        const { rows } = await db.query<Record<string, unknown> & { tenantry_cursor: string[] }>(
          text,
          after ?? [],
        );
        const page = rows.slice(0, limit);
        const last = page[page.length - 1];
        const next =
          rows.length > limit && last
            ? Buffer.from(JSON.stringify(last.tenantry_cursor)).toString('base64url')
            : null;
        return { rows: page.map(({ tenantry_cursor: _cursor, ...row }) => row), nextCursor: next };
      });
    },
  );
}
