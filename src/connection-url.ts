/** Helpers for PostgreSQL connection URLs. */

/**
 * Returns `url` with its user and password replaced (other parts kept). `user` and `password`
 * query parameters go too: node-postgres lets them win over the URL's user part, so an
 * operator URL written `…?user=postgres&password=…` would otherwise log every tenant
 * connection in as the operator.
 */
export function withCredentials(url: string, user: string, password: string): string {
  const parsed = new URL(url);
  parsed.username = encodeURIComponent(user);
  parsed.password = encodeURIComponent(password);
  parsed.searchParams.delete('user');
  parsed.searchParams.delete('password');
  return parsed.toString();
}

/** `host:port/database` of a URL, for messages: never the password. */
export function describeUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.hostname || 'localhost'}:${parsed.port || '5432'}${parsed.pathname}`;
  } catch {
    return '(unparseable URL)';
  }
}

/** Returns `url` pointing at `database` (other parts kept). */
export function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${encodeURIComponent(database)}`;
  return parsed.toString();
}

/** Host, port and database of a URL, for postgres_fdw server options. */
export function urlParts(url: string): { host: string; port: string; database: string } {
  const parsed = new URL(url);
  return {
    host: parsed.hostname || 'localhost',
    port: parsed.port || '5432',
    database: decodeURIComponent(parsed.pathname.replace(/^\//, '')) || 'postgres',
  };
}
