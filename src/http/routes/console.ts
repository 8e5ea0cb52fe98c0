import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { HttpContext } from '../context.js';

/**
 * The console's Content-Security-Policy: everything from this origin, nothing inline (no inline
 * scripts, styles or event handlers), no frames, no plugins, no form posts elsewhere.
 */
export const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** The files the console serves: flat names with a known type (never tsconfig.json or dotfiles). */
const ASSET = /^\/?[a-z0-9-]+\.(?:html|css|js|svg)$/;

/** Candidate folders, relative to this module: dist's copy (scripts/copy-sql.js), then src. */
const CANDIDATES = ['../console/', '../../../../src/http/console/'];

/**
 * The folder holding the console's files (index.html, CSS, ES modules): next to the compiled
 * module when the build copied it, else the source folder of a checkout; undefined when neither
 * exists (the API then runs without a console).
 */
export function consoleRoot(): string | undefined {
  for (const candidate of CANDIDATES) {
    const dir = fileURLToPath(new URL(candidate, import.meta.url));
    if (existsSync(join(dir, 'index.html'))) return dir;
  }
  return undefined;
}

function secure(reply: FastifyReply): void {
  void reply
    .header('content-security-policy', CONSOLE_CSP)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('x-frame-options', 'DENY')
    .header('cross-origin-opener-policy', 'same-origin')
    // Unhashed file names: revalidate every time (ETag / Last-Modified answer 304 when unchanged).
    .header('cache-control', 'no-cache');
}

/**
 * The web console: `GET /` answers index.html and `GET /console/<file>` its stylesheet, ES
 * modules and icon, with their content types, a strict CSP and revalidation caching. Unknown
 * files fall through to the JSON 404 of the API. The console itself only calls the admin API.
 */
export async function consoleRoutes(app: FastifyInstance, ctx: HttpContext): Promise<void> {
  const root = consoleRoot();
  if (!root) {
    ctx.logger.warn({ looked: CANDIDATES }, 'console files not found; serving the API without the console');
    return;
  }
  await app.register(async (scope) => {
    scope.addHook('onSend', (_request, reply, payload, done) => {
      secure(reply);
      done(null, payload);
    });
    await scope.register(fastifyStatic, {
      root,
      prefix: '/console/',
      index: false,
      list: false,
      redirect: false,
      dotfiles: 'deny',
      cacheControl: false,
      etag: true,
      lastModified: true,
      allowedPath: (path) => ASSET.test(path),
    });
    scope.get('/', { schema: { hide: true } }, (_request, reply) => reply.sendFile('index.html'));
  });
}
