import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { TenantryError, fromDatabaseError } from '../errors.js';
import type { Logger } from '../logger.js';
import { connectionLost, isConnectionError } from '../pool/index.js';

/** The body of every error answer: a stable code and a message. */
export interface ErrorBody {
  readonly code: string;
  readonly message: string;
}

/** The JSON schema of {@link ErrorBody}, for the OpenAPI document. */
export const errorSchema = {
  type: 'object',
  properties: { code: { type: 'string' }, message: { type: 'string' } },
  required: ['code', 'message'],
} as const;

interface PgLike {
  code?: unknown;
  message: string;
  severity?: unknown;
}

/**
 * The status of a PostgreSQL error from a tenant's own SQL: 403 (privilege), 408 (its statement
 * timeout), 409 (conflicts: constraints, serialization, a lock not available), 500 for what is
 * the server's or the connection's (08, 53, 57, 58, XX, F0) and 400 for everything else — the
 * tenant's own mistake (bad SQL, its own RAISE, a cardinality or dependency error…).
 */
function sqlStatus(code: string): number {
  if (code === '42501' || code.startsWith('28')) return 403;
  if (code === '57014') return 408;
  if (code.startsWith('23') || code.startsWith('40') || code === '55P03' || code === '55006') return 409;
  if (/^(08|53|57|58|XX|F0)/.test(code)) return 500;
  return 400;
}

/**
 * Maps anything thrown in a route to `{ code, message }` with the right status: TenantryError
 * by its registry entry, schema validation and bad JSON as 400 `TENANTRY_ERR_INVALID_ARGUMENT`
 * naming the field, PostgreSQL errors from a tenant's SQL by SQLSTATE class (code
 * `SQLSTATE_<code>`), a lost or silent database connection as 503 `TENANTRY_ERR_CONNECTION_LOST`;
 * anything else 500 without details (logged).
 */
export function errorHandler(logger: Logger) {
  return (error: FastifyError | Error, request: FastifyRequest, reply: FastifyReply): void => {
    const mapped = fromDatabaseError(error);
    if (mapped instanceof TenantryError) {
      void reply.status(mapped.status).send({ code: mapped.code, message: mapped.message });
      return;
    }
    const fastifyError = error as FastifyError;
    if (fastifyError.validation) {
      const where = fastifyError.validationContext ?? 'body';
      const first = fastifyError.validation[0];
      const field = first?.instancePath ? `${where}${first.instancePath.replace(/\//g, '.')}` : where;
      const extra =
        (first?.params as { missingProperty?: string; additionalProperty?: string } | undefined) ?? {};
      const named = extra.missingProperty
        ? `${field}.${extra.missingProperty} is required`
        : extra.additionalProperty
          ? `${field}.${extra.additionalProperty} is not allowed`
          : `${field} ${first?.message ?? 'is invalid'}`;
      void reply
        .status(400)
        .send({ code: 'TENANTRY_ERR_INVALID_ARGUMENT', message: `Invalid request: ${named}.` });
      return;
    }
    if (
      fastifyError.statusCode !== undefined &&
      fastifyError.statusCode >= 400 &&
      fastifyError.statusCode < 500
    ) {
      const code =
        fastifyError.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE'
          ? 'UNSUPPORTED_MEDIA_TYPE'
          : 'INVALID_ARGUMENT';
      void reply
        .status(fastifyError.statusCode)
        .send({ code: `TENANTRY_ERR_${code}`, message: `Invalid request: ${error.message}` });
      return;
    }
    if (isConnectionError(error)) {
      // PostgreSQL went away or stopped answering mid-request: say so, as a 503 a client may retry.
      const lost = connectionLost(error);
      logger.warn({ err: error, reqId: request.id }, 'request lost its database connection');
      void reply.status(lost.status).send({ code: lost.code, message: lost.message });
      return;
    }
    const pgError = error as PgLike;
    if (
      typeof pgError.code === 'string' &&
      /^[0-9A-Z]{5}$/.test(pgError.code) &&
      typeof pgError.severity === 'string'
    ) {
      const status = sqlStatus(pgError.code);
      if (status < 500) {
        void reply.status(status).send({ code: `SQLSTATE_${pgError.code}`, message: pgError.message });
        return;
      }
    }
    logger.error({ err: error, reqId: request.id }, 'request failed');
    void reply
      .status(500)
      .send({ code: 'TENANTRY_ERR_INTERNAL', message: 'Internal error; see the server log.' });
  };
}
