import type { FastifyInstance } from 'fastify';
import { TenantryError } from '../../errors.js';
import { asTenant, type HttpContext } from '../context.js';
import { errorSchema } from '../errors.js';

const tenantHeaders = {
  type: 'object',
  properties: { 'x-tenant-id': { type: 'string', description: "The tenant's id, uuid or name." } },
} as const;

const userSchema = {
  type: 'object',
  properties: {
    id: { type: 'string', format: 'uuid' },
    name: { type: 'string' },
    created_at: { type: 'string' },
  },
  required: ['id', 'name', 'created_at'],
} as const;

const errors = { 400: errorSchema, 401: errorSchema, 403: errorSchema, 404: errorSchema } as const;

/**
 * Seed 002's tenant data API: the `users` table of the tenant in `x-tenant-id`, with a sealed
 * principal or delegation token (or the admin token) as bearer.
 */
export function dataRoutes(app: FastifyInstance, ctx: HttpContext): void {
  app.get(
    '/v1/internal/users',
    {
      schema: {
        tags: ['tenant data'],
        summary: "List the tenant's users (seed 002).",
        headers: tenantHeaders,
        security: [{ bearer: [] }],
        response: { 200: { type: 'array', items: userSchema }, ...errors },
      },
    },
    (request) =>
      asTenant(ctx, request, 'fixed', async (db) => {
        const { rows } = await db.query('SELECT id, name, created_at FROM users ORDER BY created_at, id');
        return rows;
      }),
  );

  app.post(
    '/v1/internal/users',
    {
      schema: {
        tags: ['tenant data'],
        summary: 'Add a user row to the tenant (seed 002).',
        headers: tenantHeaders,
        security: [{ bearer: [] }],
        body: {
          type: 'object',
          properties: { name: { type: 'string', minLength: 1, maxLength: 200 } },
          required: ['name'],
          additionalProperties: false,
        },
        response: { 201: userSchema, ...errors },
      },
    },
    async (request, reply) => {
      const { name } = request.body as { name: string };
      const row = await asTenant(ctx, request, 'fixed', async (db) => {
        const { rows } = await db.query(
          'INSERT INTO users (name) VALUES ($1) RETURNING id, name, created_at',
          [name],
        );
        return rows[0];
      });
      if (!row) throw new TenantryError('INTERNAL');
      return reply.status(201).send(row);
    },
  );
}
