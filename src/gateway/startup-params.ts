import { TenantryError } from '../errors.js';

/**
 * Session parameters a client may set at connect time. The gateway applies them to whichever
 * backend serves each transaction (a `SET` sent ahead of the client's first message when the
 * backend's value differs), as PgBouncer does for its tracked parameters.
 */
const TRACKED: Readonly<Record<string, RegExp>> = {
  application_name: /^[\x20-\x7e]{0,63}$/,
  DateStyle: /^[A-Za-z, ]{1,32}$/,
  IntervalStyle: /^(?:postgres|postgres_verbose|sql_standard|iso_8601)$/i,
  TimeZone: /^[A-Za-z0-9/_+\-:. ]{1,64}$/,
  extra_float_digits: /^-?[0-3]$/,
};

/** Accepted with one value only (what the gateway's backends use). */
const FIXED: Readonly<Record<string, RegExp>> = {
  client_encoding: /^(?:utf-?8|unicode|sql_ascii)$/i,
  standard_conforming_strings: /^on$/i,
};

/** What a startup message asked for, checked. */
export interface StartupRequest {
  /** The user name as sent (`alice@HomeDepot`, `alice@HomeDepot+token`, `token`). */
  readonly user: string;
  readonly database: string;
  /** Tracked parameters the client set, keyed by their canonical name. */
  readonly settings: Map<string, string>;
  /** `options=-c tenantry.tenant=X`: the effective tenant a super-tenant user asks for. */
  readonly effectiveTenant: string | undefined;
}

function refuse(problem: string): TenantryError {
  return new TenantryError('FORBIDDEN', { problem });
}

/** The canonical spelling of a tracked parameter name (GUC names are case-insensitive). */
function canonical(name: string): string | undefined {
  const lower = name.toLowerCase();
  return [...Object.keys(TRACKED), ...Object.keys(FIXED)].find((key) => key.toLowerCase() === lower);
}

/** Splits libpq's `options` value: `-c name=value`, `-cname=value` or `--name=value`, backslash escapes. */
export function parseOptions(options: string): [string, string][] {
  const words: string[] = [];
  let word = '';
  for (let i = 0; i < options.length; i++) {
    const c = options[i] as string;
    if (c === '\\' && i + 1 < options.length) word += options[++i];
    else if (/\s/.test(c)) {
      if (word) words.push(word);
      word = '';
    } else word += c;
  }
  if (word) words.push(word);
  const pairs: [string, string][] = [];
  for (let i = 0; i < words.length; i++) {
    let setting = words[i] as string;
    if (setting === '-c') setting = words[++i] ?? '';
    else if (setting.startsWith('-c')) setting = setting.slice(2);
    else if (setting.startsWith('--')) setting = setting.slice(2);
    else throw refuse(`the startup option ${JSON.stringify(setting)} is not allowed through the gateway`);
    const at = setting.indexOf('=');
    if (at <= 0) throw refuse(`the startup option ${JSON.stringify(setting)} is not name=value`);
    pairs.push([setting.slice(0, at).replace(/-/g, '_'), setting.slice(at + 1)]);
  }
  return pairs;
}

/**
 * Checks a startup message's parameters against the allowlist. Throws `TENANTRY_ERR_FORBIDDEN`
 * (42501) for anything else — role, search_path, session_authorization, replication… — and
 * `TENANTRY_ERR_DATABASE_NOT_FOUND` (3D000) for another database name.
 */
export function checkStartup(params: ReadonlyMap<string, string>, database: string): StartupRequest {
  const user = params.get('user');
  if (!user) throw new TenantryError('AUTH');
  const asked = params.get('database') ?? user;
  if (asked !== database)
    throw new TenantryError('DATABASE_NOT_FOUND', { database: asked, expected: database });
  const settings = new Map<string, string>();
  let effectiveTenant: string | undefined;
  const apply = (name: string, value: string): void => {
    if (name.toLowerCase() === 'tenantry.tenant') {
      effectiveTenant = value;
      return;
    }
    const key = canonical(name);
    const rule = key === undefined ? undefined : (TRACKED[key] ?? FIXED[key]);
    if (key === undefined || rule === undefined) {
      throw refuse(`the startup parameter ${JSON.stringify(name)} is not allowed through the gateway`);
    }
    if (!rule.test(value)) throw refuse(`${key} = ${JSON.stringify(value)} is not accepted by the gateway`);
    if (key in TRACKED) settings.set(key, value);
  };
  for (const [name, value] of params) {
    if (name === 'user' || name === 'database') continue;
    if (name === 'options') for (const [n, v] of parseOptions(value)) apply(n, v);
    else if (name === 'fallback_application_name') {
      if (!params.has('application_name')) apply('application_name', value);
    } else apply(name, value);
  }
  return { user, database: asked, settings, effectiveTenant };
}

/** Reads the key/value pairs of a StartupMessage body (after length and protocol version). */
export function readStartupParams(body: Buffer): Map<string, string> {
  const params = new Map<string, string>();
  const parts = body.toString('utf8').split('\0');
  for (let i = 0; i + 1 < parts.length; i += 2) {
    const name = parts[i] as string;
    if (name === '') break;
    params.set(name, parts[i + 1] as string);
  }
  return params;
}

/** The SET/RESET statements that bring a backend from `applied` to `wanted` (empty: none needed). */
export function settingsDiff(
  applied: ReadonlyMap<string, string>,
  wanted: ReadonlyMap<string, string>,
): string {
  const statements: string[] = [];
  for (const [name, value] of wanted) {
    if (applied.get(name) !== value) statements.push(`SET "${name}" TO '${value.replace(/'/g, "''")}'`);
  }
  for (const name of applied.keys()) if (!wanted.has(name)) statements.push(`RESET "${name}"`);
  return statements.join('; ');
}
