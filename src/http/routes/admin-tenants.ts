import type { FastifyInstance } from 'fastify';
import type { Tenant } from '../../catalog/index.js';
import { adminOnly, type HttpContext } from '../context.js';
import { errorSchema } from '../errors.js';

/** A tenant as the admin API shows it (no role names or credentials). */
export function tenantView(t: Tenant): Record<string, unknown> {
  return {
    id: t.id,
    uuid: t.uuid,
    name: t.name,
    kind: t.kind,
    state: t.state,
    isolation: t.isolation,
    server: t.server,
    createdAt: t.createdAt.toISOString(),
    updatedAt: t.updatedAt.toISOString(),
  };
}

const tenantSchema = {
  type: 'object',
  properties: {
    id: { type: 'integer' },
    uuid: { type: 'string' },
    name: { type: 'string' },
    kind: { type: 'string' },
    state: { type: 'string' },
    isolation: { type: 'string' },
    server: { type: 'string' },
    createdAt: { type: 'string' },
    updatedAt: { type: 'string' },
  },
} as const;

/** Error answers of admin routes. */
export const adminErrors = {
  400: errorSchema,
  401: errorSchema,
  404: errorSchema,
  409: errorSchema,
} as const;

const tenantParams = {
  type: 'object',
  properties: { tenant: { type: 'string', minLength: 1, maxLength: 200, description: 'id, uuid or name' } },
  required: ['tenant'],
} as const;

/** A tenant reference from a path parameter: digits are an id, anything else a uuid or name. */
export function tenantRef(value: string): number | string {
  return /^-?[0-9]{1,9}$/.test(value) ? Number(value) : value;
}

/** `/v1/admin/tenants…`: create, list, show, disable, enable, lock, unlock, limits, drop. */
export function adminTenantRoutes(app: FastifyInstance, ctx: HttpContext): void {
  const base = { tags: ['admin'], security: [{ bearer: [] }] };
  const preHandler = adminOnly(ctx);
  const tenants = ctx.tenantry.tenants;

  app.get(
    '/v1/admin/tenants',
    {
      preHandler,
      schema: {
        ...base,
        summary: 'List tenants.',
        response: { 200: { type: 'array', items: tenantSchema }, ...adminErrors },
      },
    },
    async () => (await tenants.list()).map(tenantView),
  );

  app.post(
    '/v1/admin/tenants',
    {
      preHandler,
      schema: {
        ...base,
        summary: 'Create a tenant.',
        body: {
          type: 'object',
          properties: {
            name: { type: 'string', minLength: 1, maxLength: 63 },
            kind: { type: 'string', enum: ['regular', 'super'] },
            isolation: { type: 'string', enum: ['shared', 'schema', 'database'] },
            server: { type: 'string', minLength: 1, maxLength: 63 },
            loginRole: { type: 'boolean' },
          },
          required: ['name'],
          additionalProperties: false,
        },
        response: { 201: tenantSchema, ...adminErrors },
      },
    },
    async (request, reply) => {
      const created = await tenants.create(request.body as Parameters<typeof tenants.create>[0]);
      return reply.status(201).send(tenantView(created));
    },
  );

  app.get(
    '/v1/admin/tenants/:tenant',
    {
      preHandler,
      schema: {
        ...base,
        summary: 'Show a tenant.',
        params: tenantParams,
        response: { 200: tenantSchema, ...adminErrors },
      },
    },
    async (request) =>
      tenantView(await tenants.show(tenantRef((request.params as { tenant: string }).tenant))),
  );

  for (const action of ['disable', 'enable', 'lock', 'unlock'] as const) {
    app.post(
      `/v1/admin/tenants/:tenant/${action}`,
      {
        preHandler,
        schema: {
          ...base,
          summary: `${action[0]?.toUpperCase()}${action.slice(1)} a tenant.`,
          params: tenantParams,
          response: { 200: tenantSchema, ...adminErrors },
        },
      },
      async (request) =>
        tenantView(await tenants[action](tenantRef((request.params as { tenant: string }).tenant))),
    );
  }

  app.put(
    '/v1/admin/tenants/:tenant/limits',
    {
      preHandler,
      schema: {
        ...base,
        summary: "Set a tenant's limits (statementTimeoutMs: ms per statement on every face; null: none).",
        params: tenantParams,
        body: {
          type: 'object',
          properties: {
            statementTimeoutMs: { type: ['integer', 'null'], minimum: 1, maximum: 2_147_483_647 },
          },
          additionalProperties: false,
        },
        response: {
          200: {
            type: 'object',
            properties: { tenant: { type: 'string' }, statementTimeoutMs: { type: ['integer', 'null'] } },
          },
          ...adminErrors,
        },
      },
    },
    async (request) => {
      const body = request.body as { statementTimeoutMs?: number | null };
      const changed = await tenants.setLimits(tenantRef((request.params as { tenant: string }).tenant), body);
      return { tenant: changed.name, statementTimeoutMs: changed.statementTimeoutMs };
    },
  );

  app.delete(
    '/v1/admin/tenants/:tenant',
    {
      preHandler,
      schema: {
        ...base,
        summary: 'Drop a tenant and its rows (force=true when it still has rows).',
        params: tenantParams,
        querystring: {
          type: 'object',
          properties: { force: { type: 'boolean', default: false } },
          additionalProperties: false,
        },
        response: {
          200: {
            type: 'object',
            properties: { deleted: { type: 'object', additionalProperties: { type: 'integer' } } },
          },
          ...adminErrors,
        },
      },
    },
    async (request) => {
      const { force } = request.query as { force: boolean };
      return {
        deleted: await tenants.drop(tenantRef((request.params as { tenant: string }).tenant), { force }),
      };
    },
  );
}
