import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { TenantryError } from '../../errors.js';
import { normalizeSql, refusedStatement } from '../../session/sql-guard.js';
import { asTenant, type HttpContext } from '../context.js';
import { errorSchema } from '../errors.js';
import { tableRoute } from './tables.js';

const errors = {
  400: errorSchema,
  401: errorSchema,
  403: errorSchema,
  404: errorSchema,
  408: errorSchema,
  409: errorSchema,
} as const;

/** Statements read through a cursor, so no more than the row limit is ever fetched. */
const CURSOR_SAFE = /^\s*\(*\s*(?:select|values|table|with)\b/;
/** A cursor refused for the statement (a data-modifying WITH; several statements): run it plainly. */
const NOT_A_CURSOR = new Set(['0A000', '42601']);

interface SqlBody {
  sql: string;
  params?: (string | number | boolean | null)[];
}

/** `POST /v1/sql` (a tenant's own SQL, under its own role) and `GET /v1/tables/:name`. */
export function sqlRoutes(app: FastifyInstance, ctx: HttpContext): void {
  app.post(
    '/v1/sql',
    {
      schema: {
        tags: ['tenant data'],
        summary: 'Run one SQL statement as the tenant (its own login role), with a timeout and a row limit.',
        headers: {
          type: 'object',
          properties: { 'x-tenant-id': { type: 'string' } },
        },
        security: [{ bearer: [] }],
        body: {
          type: 'object',
          properties: {
            sql: { type: 'string', minLength: 1, maxLength: 100_000 },
            params: {
              type: 'array',
              maxItems: 1000,
              items: { type: ['string', 'number', 'boolean', 'null'] },
            },
          },
          required: ['sql'],
          additionalProperties: false,
        },
        response: {
          200: {
            type: 'object',
            properties: {
              command: { type: 'string' },
              rowCount: { type: ['integer', 'null'] },
              fields: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: { name: { type: 'string' }, dataTypeID: { type: 'integer' } },
                },
              },
              rows: { type: 'array', items: { type: 'object', additionalProperties: true } },
              truncated: { type: 'boolean' },
            },
          },
          ...errors,
        },
      },
    },
    (request) => {
      const { sql, params = [] } = request.body as SqlBody;
      const limit = ctx.limits.rowLimit;
      return asTenant(ctx, request, 'tenant', async (db) => {
        // The gateway's second wall, here too (PostgreSQL's privileges are the first); after
        // authentication, so an anonymous caller gets 401 whatever it sends.
        const refused = refusedStatement(sql);
        if (refused !== undefined) {
          throw new TenantryError('FORBIDDEN', { problem: `${refused} is not allowed for tenant SQL.` });
        }
        // Trailing semicolons (and blanks) are not a second statement.
        const text = sql.replace(/[\s;]+$/, '');
        const normalized = normalizeSql(text);
        if (CURSOR_SAFE.test(normalized)) {
          const read = async (tx: typeof db) => {
            await tx.query({
              text: `DECLARE tenantry_http NO SCROLL CURSOR FOR ${text}`,
              values: params,
              queryMode: 'extended',
            } as pg.QueryConfig);
            const result = await tx.query(`FETCH FORWARD ${limit + 1} FROM tenantry_http`);
            const truncated = result.rows.length > limit;
            const rows = truncated ? result.rows.slice(0, limit) : result.rows;
            return { command: 'SELECT', rowCount: rows.length, fields: fieldsOf(result), rows, truncated };
          };
          // A plain query is always a cursor; a WITH may modify data, which a cursor refuses: it is
          // tried in a savepoint and, refused, runs plainly below.
          if (!/^\s*\(*\s*with\b/.test(normalized)) return read(db);
          try {
            return await db.transaction(read);
          } catch (error) {
            if (!NOT_A_CURSOR.has(sqlState(error))) throw error;
          }
        }
        const result = await db.query({ text, values: params, queryMode: 'extended' } as pg.QueryConfig);
        const all = Array.isArray(result.rows) ? result.rows : [];
        const truncated = all.length > limit;
        return {
          command: result.command,
          rowCount: result.rowCount,
          fields: fieldsOf(result),
          rows: truncated ? all.slice(0, limit) : all,
          truncated,
        };
      });
    },
  );
  tableRoute(app, ctx, errors);
}

/** The SQLSTATE of a PostgreSQL error (also when wrapped as the cause of a TenantryError). */
function sqlState(error: unknown): string {
  const own = (error as { code?: unknown }).code;
  if (typeof own === 'string' && /^[0-9A-Z]{5}$/.test(own)) return own;
  const cause = (error as { cause?: { code?: unknown } }).cause?.code;
  return typeof cause === 'string' ? cause : '';
}

function fieldsOf(result: pg.QueryResult): { name: string; dataTypeID: number }[] {
  return (result.fields ?? []).map((f) => ({ name: f.name, dataTypeID: f.dataTypeID }));
}
