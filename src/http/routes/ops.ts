import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import { adminOnly, noteTenant, type HttpContext } from '../context.js';
import { errorSchema } from '../errors.js';

/** `POST /v1/auth/login`, `/healthz`, `/readyz` and `/metrics`. */
export function opsRoutes(app: FastifyInstance, ctx: HttpContext, registry: Registry): void {
  app.post(
    '/v1/auth/login',
    {
      schema: {
        tags: ['auth'],
        summary: 'Log a user in (user@domain and password); answers a sealed principal.',
        body: {
          type: 'object',
          properties: {
            user: { type: 'string', minLength: 1, maxLength: 128 },
            password: { type: 'string', minLength: 1, maxLength: 1024 },
            expiresInSeconds: { type: 'integer', minimum: 60, maximum: 86_400 },
          },
          required: ['user', 'password'],
          additionalProperties: false,
        },
        response: {
          200: {
            type: 'object',
            properties: {
              token: { type: 'string' },
              tenant: { type: 'string' },
              expiresAt: { type: 'string' },
            },
          },
          400: errorSchema,
          401: errorSchema,
          403: errorSchema,
        },
      },
    },
    async (request) => {
      const body = request.body as { user: string; password: string; expiresInSeconds?: number };
      const token = await ctx.tenantry.login(
        body.user,
        body.password,
        body.expiresInSeconds === undefined ? {} : { expiresInSeconds: body.expiresInSeconds },
      );
      const principal = await ctx.tenantry.authorize(token);
      noteTenant(request, principal.tenant.name);
      return { token, tenant: principal.tenant.name, expiresAt: principal.expiresAt.toISOString() };
    },
  );

  app.get(
    '/healthz',
    { schema: { tags: ['ops'], summary: 'Liveness: the process serves requests.' } },
    () => ({ status: 'ok' }),
  );

  app.get(
    '/readyz',
    { schema: { tags: ['ops'], summary: 'Readiness: PostgreSQL answers.' } },
    async (_request, reply) => {
      try {
        await ctx.tenantry.operator.query('SELECT 1');
        return { status: 'ready' };
      } catch {
        return reply
          .status(503)
          .send({ code: 'TENANTRY_ERR_DATABASE_UNREACHABLE', message: 'PostgreSQL does not answer.' });
      }
    },
  );

  app.get(
    '/metrics',
    {
      // Tenant names and their activity: the operator's (Prometheus: `authorization` with the admin token).
      schema: {
        tags: ['ops'],
        summary: 'Prometheus metrics (admin token).',
        security: [{ bearer: [] }],
        response: { 401: errorSchema },
      },
      preHandler: adminOnly(ctx),
    },
    async (_request, reply) => {
      const text = await registry.metrics();
      return reply.type(registry.contentType).send(text);
    },
  );
}
