import { pino, type Logger as PinoLogger } from 'pino';

/** The logger tenantry writes through: a pino logger (structured JSON lines). */
export type Logger = PinoLogger;

/**
 * pino's error serializer without the objects node-postgres hangs on its errors (`client`: the
 * whole connection — settings, buffers, statement records — thousands of characters per line).
 */
export function serializeError(error: Error): ReturnType<typeof pino.stdSerializers.err> {
  const serialized = pino.stdSerializers.err(error);
  delete (serialized as { client?: unknown }).client;
  return serialized;
}

/**
 * Creates tenantry's logger. Library code never prints; it logs here, silently by default.
 * The CLI passes a level (`info` for `serve`) and writes to stderr so stdout stays for data.
 */
export function createLogger(level: string = 'silent'): Logger {
  return pino(
    { level, base: { name: 'tenantry' }, serializers: { err: serializeError } },
    pino.destination(2),
  );
}
