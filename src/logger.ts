import { pino, type Logger as PinoLogger } from 'pino';

/** The logger tenantry writes through: a pino logger (structured JSON lines). */
export type Logger = PinoLogger;

/**
 * Creates tenantry's logger. Library code never prints; it logs here, silently by default.
 * The CLI passes a level (`info` for `serve`) and writes to stderr so stdout stays for data.
 */
export function createLogger(level: string = 'silent'): Logger {
  return pino({ level, base: { name: 'tenantry' } }, pino.destination(2));
}
