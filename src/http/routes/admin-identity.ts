import type { FastifyInstance } from 'fastify';
import type { Domain, Permission, User } from '../../identity/index.js';
import { adminOnly, type HttpContext } from '../context.js';
import { adminErrors, tenantRef } from './admin-tenants.js';

function domainView(d: Domain): Record<string, unknown> {
  return { name: d.name, tenant: d.tenant, authSystem: d.authSystem, createdAt: d.createdAt.toISOString() };
}

function userView(u: User): Record<string, unknown> {
  return {
    ref: u.ref,
    name: u.name,
    domain: u.domain,
    tenant: u.tenant,
    permission: u.permission,
    createdAt: u.createdAt.toISOString(),
  };
}

const nameParam = (name: string) =>
  ({
    type: 'object',
    properties: { [name]: { type: 'string', minLength: 1, maxLength: 200 } },
    required: [name],
  }) as const;

const anyObject = { type: 'object', additionalProperties: true } as const;

/** `/v1/admin/domains`, `/v1/admin/users` and `/v1/admin/tokens`. */
export function adminIdentityRoutes(app: FastifyInstance, ctx: HttpContext): void {
  const base = { tags: ['admin'], security: [{ bearer: [] }] };
  const preHandler = adminOnly(ctx);
  const { domains, users, tokens } = ctx.tenantry;

  app.get(
    '/v1/admin/domains',
    {
      preHandler,
      schema: {
        ...base,
        summary: 'List sign-on domains.',
        response: { 200: { type: 'array', items: anyObject }, ...adminErrors },
      },
    },
    async () => (await domains.list()).map(domainView),
  );
  app.post(
    '/v1/admin/domains',
    {
      preHandler,
      schema: {
        ...base,
        summary: 'Add a domain for a tenant; answers its access code once.',
        body: {
          type: 'object',
          properties: {
            name: { type: 'string', minLength: 1, maxLength: 63 },
            tenant: { type: 'string', minLength: 1, maxLength: 200 },
            authSystem: { type: 'string', minLength: 1, maxLength: 63 },
          },
          required: ['name', 'tenant'],
          additionalProperties: false,
        },
        response: { 201: anyObject, ...adminErrors },
      },
    },
    async (request, reply) => {
      const body = request.body as { name: string; tenant: string; authSystem?: string };
      const added = await domains.add(body.name, {
        tenant: tenantRef(body.tenant),
        ...(body.authSystem === undefined ? {} : { authSystem: body.authSystem }),
      });
      return reply.status(201).send({ ...domainView(added), accessCode: added.accessCode });
    },
  );
  app.delete(
    '/v1/admin/domains/:domain',
    { preHandler, schema: { ...base, summary: 'Remove a domain.', params: nameParam('domain') } },
    async (request, reply) => {
      await domains.remove((request.params as { domain: string }).domain);
      return reply.status(204).send();
    },
  );

  app.get(
    '/v1/admin/users',
    {
      preHandler,
      schema: {
        ...base,
        summary: 'List users (of one domain with ?domain=).',
        querystring: {
          type: 'object',
          properties: { domain: { type: 'string', maxLength: 63 } },
          additionalProperties: false,
        },
        response: { 200: { type: 'array', items: anyObject }, ...adminErrors },
      },
    },
    async (request) => {
      const { domain } = request.query as { domain?: string };
      return (await users.list(domain === undefined ? {} : { domain })).map(userView);
    },
  );
  app.post(
    '/v1/admin/users',
    {
      preHandler,
      schema: {
        ...base,
        summary: 'Add a user (user@domain) with a password and a permission.',
        body: {
          type: 'object',
          properties: {
            user: { type: 'string', minLength: 1, maxLength: 128 },
            password: { type: 'string', minLength: 1, maxLength: 1024 },
            permission: { type: 'string', enum: ['read', 'write', 'admin'] },
          },
          required: ['user'],
          additionalProperties: false,
        },
        response: { 201: anyObject, ...adminErrors },
      },
    },
    async (request, reply) => {
      const body = request.body as { user: string; password?: string; permission?: Permission };
      const added = await users.add(body.user, {
        ...(body.password === undefined ? {} : { password: body.password }),
        ...(body.permission === undefined ? {} : { permission: body.permission }),
      });
      return reply.status(201).send(userView(added));
    },
  );
  app.put(
    '/v1/admin/users/:user/password',
    {
      preHandler,
      schema: {
        ...base,
        summary: "Set a user's password.",
        params: nameParam('user'),
        body: {
          type: 'object',
          properties: { password: { type: 'string', minLength: 1, maxLength: 1024 } },
          required: ['password'],
          additionalProperties: false,
        },
      },
    },
    async (request, reply) => {
      await users.setPassword(
        (request.params as { user: string }).user,
        (request.body as { password: string }).password,
      );
      return reply.status(204).send();
    },
  );
  app.delete(
    '/v1/admin/users/:user',
    { preHandler, schema: { ...base, summary: 'Remove a user.', params: nameParam('user') } },
    async (request, reply) => {
      await users.remove((request.params as { user: string }).user);
      return reply.status(204).send();
    },
  );

  app.post(
    '/v1/admin/tokens/delegate',
    {
      preHandler,
      schema: {
        ...base,
        summary: 'Issue a delegation token for a user on behalf of a service.',
        body: {
          type: 'object',
          properties: {
            user: { type: 'string', minLength: 1, maxLength: 128 },
            service: { type: 'string', minLength: 1, maxLength: 128 },
            ttlSeconds: { type: 'integer', minimum: 1, maximum: 86_400 },
            audience: { type: 'string', minLength: 1, maxLength: 128 },
          },
          required: ['user', 'service'],
          additionalProperties: false,
        },
        response: {
          201: {
            type: 'object',
            properties: { token: { type: 'string' }, id: { type: 'string' }, expiresAt: { type: 'string' } },
          },
          ...adminErrors,
        },
      },
    },
    async (request, reply) => {
      const issued = await tokens.issue(request.body as Parameters<typeof tokens.issue>[0]);
      return reply
        .status(201)
        .send({ token: issued.token, id: issued.id, expiresAt: issued.expiresAt.toISOString() });
    },
  );
  app.post(
    '/v1/admin/tokens/:id/revoke',
    { preHandler, schema: { ...base, summary: 'Revoke a delegation token by id.', params: nameParam('id') } },
    async (request, reply) => {
      await tokens.revoke((request.params as { id: string }).id);
      return reply.status(204).send();
    },
  );
}
