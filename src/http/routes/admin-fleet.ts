import type { FastifyInstance } from 'fastify';
import { adminOnly, type HttpContext } from '../context.js';
import { adminErrors } from './admin-tenants.js';

const anyObject = { type: 'object', additionalProperties: true } as const;

/** `/v1/admin/groups`, `/v1/admin/servers` and `/v1/admin/stats` (clients and pools). */
export function adminFleetRoutes(app: FastifyInstance, ctx: HttpContext): void {
  const base = { tags: ['admin'], security: [{ bearer: [] }] };
  const preHandler = adminOnly(ctx);
  const { groups, servers } = ctx.tenantry;

  app.get(
    '/v1/admin/groups',
    {
      preHandler,
      schema: {
        ...base,
        summary: 'List tenant groups.',
        response: { 200: { type: 'array', items: anyObject }, ...adminErrors },
      },
    },
    () => groups.list(),
  );
  app.post(
    '/v1/admin/groups',
    {
      preHandler,
      schema: {
        ...base,
        summary: 'Create a tenant group sharing one segment of a table.',
        body: {
          type: 'object',
          properties: {
            name: { type: 'string', minLength: 1, maxLength: 63 },
            table: { type: 'string', minLength: 1, maxLength: 127 },
            tenants: {
              type: 'array',
              items: { type: 'string', minLength: 1, maxLength: 200 },
              maxItems: 1000,
            },
          },
          required: ['name', 'table'],
          additionalProperties: false,
        },
        response: { 201: anyObject, ...adminErrors },
      },
    },
    async (request, reply) => {
      const body = request.body as { name: string; table: string; tenants?: string[] };
      const group = await groups.create(body.name, { table: body.table, tenants: body.tenants ?? [] });
      return reply.status(201).send(group);
    },
  );

  app.get(
    '/v1/admin/servers',
    {
      preHandler,
      schema: {
        ...base,
        summary: 'List servers.',
        response: { 200: { type: 'array', items: anyObject }, ...adminErrors },
      },
    },
    () => servers.list(),
  );
  app.post(
    '/v1/admin/servers',
    {
      preHandler,
      schema: {
        ...base,
        summary: 'Register a server tenants can be placed on.',
        body: {
          type: 'object',
          properties: {
            name: { type: 'string', minLength: 1, maxLength: 63 },
            url: { type: 'string', minLength: 1, maxLength: 2048 },
            budget: { type: 'integer', minimum: 1 },
          },
          required: ['name', 'url'],
          additionalProperties: false,
        },
        response: { 201: anyObject, ...adminErrors },
      },
    },
    async (request, reply) => {
      const body = request.body as { name: string; url: string; budget?: number };
      const added = await servers.add(
        body.name,
        body.url,
        body.budget === undefined ? {} : { budget: body.budget },
      );
      return reply.status(201).send(added);
    },
  );
  app.delete(
    '/v1/admin/servers/:server',
    {
      preHandler,
      schema: {
        ...base,
        summary: 'Remove a server without tenants.',
        params: {
          type: 'object',
          properties: { server: { type: 'string', maxLength: 63 } },
          required: ['server'],
        },
      },
    },
    async (request, reply) => {
      await servers.remove((request.params as { server: string }).server);
      return reply.status(204).send();
    },
  );

  app.get(
    '/v1/admin/stats',
    {
      preHandler,
      schema: {
        ...base,
        summary: 'Pools, connections, waiters, gateway clients and per-tenant activity.',
        response: { 200: anyObject, ...adminErrors },
      },
    },
    () => {
      const tenants = [...ctx.metrics.snapshot(1_000)].map(([tenant, c]) => ({
        tenant,
        queries: c.queries,
        errors: c.errors,
      }));
      return { pools: ctx.tenantry.poolStats(), gateway: ctx.gateway?.()?.stats() ?? null, tenants };
    },
  );
}
