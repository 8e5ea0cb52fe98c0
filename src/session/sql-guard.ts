/**
 * The gateway's second wall: statements a tenant may not send, refused before they reach
 * PostgreSQL. The first wall is PostgreSQL itself (tenant login roles, revoked functions, a
 * tenant resolved from `session_user`); this check only turns attempts into a clear 42501 early
 * and covers what PostgreSQL cannot refuse by privilege (LISTEN/NOTIFY, DISCARD, RESET ALL).
 */

/** Cheap pre-check: SQL without any of these words needs no closer look (most statements). */
const SUSPECT = /set|reset|discard|listen|notify|load|copy|advisory|alter|deallocate|prepare|explain|lock/i;

/** Statements refused at the start of a statement, with what to call them in the error. */
const STATEMENTS: readonly (readonly [RegExp, string])[] = [
  [/^(?:set|reset)\s+(?:(?:session|local)\s+)?role\b/, 'SET ROLE / RESET ROLE'],
  [/^(?:set|reset)\s+(?:session\s+)?session\s+authorization\b/, 'SET SESSION AUTHORIZATION'],
  [/^set\s+(?:(?:session|local)\s+)?tenantry\s*\./, 'setting tenantry.* parameters'],
  [/^reset\s+tenantry\s*\./, 'resetting tenantry.* parameters'],
  [/^reset\s+all\b/, 'RESET ALL'],
  [/^discard\b/, 'DISCARD'],
  [/^(?:listen|unlisten|notify)\b/, 'LISTEN / NOTIFY'],
  [/^load\b/, 'LOAD'],
  [/^alter\s+system\b/, 'ALTER SYSTEM'],
  [/^deallocate\b/, 'DEALLOCATE (prepared statements are managed by the gateway)'],
  [/^copy\b[\s\S]*\bprogram\b/, 'COPY … PROGRAM'],
  // The planner's statistics cover every tenant's rows: estimates would reveal their values.
  [/^explain\b/, 'EXPLAIN (its estimates come from statistics over every tenant’s rows)'],
  // A lock on a tenant-facing view locks the base table for every tenant.
  [/^lock\b/, 'LOCK TABLE (it would lock the table for every tenant)'],
];

/** Calls refused anywhere in a statement. */
const CALLS: readonly (readonly [RegExp, string])[] = [
  [/\bpg_(?:try_)?advisory_\w+\s*\(/, 'advisory locks'],
  [/\bpg_notify\s*\(/, 'pg_notify'],
];

/** set_config of a protected parameter, checked on the raw text (the name is a string literal). */
const SET_CONFIG = /\bset_config\s*\(\s*E?'\s*(?:role|session_authorization|tenantry\.[^']*)\s*'/i;

/**
 * Blanks comments, string literals and dollar-quoted bodies, unwraps quoted identifiers and
 * lower-cases the rest, so keywords are matched only where PostgreSQL would read them.
 */
export function normalizeSql(sql: string): string {
  let out = '';
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const c = sql[i] as string;
    const next = sql[i + 1];
    if (c === '-' && next === '-') {
      // As PostgreSQL's lexer: a comment ends at a newline or a carriage return.
      const newline = sql.indexOf('\n', i);
      const carriage = sql.indexOf('\r', i);
      const end = newline < 0 ? carriage : carriage < 0 ? newline : Math.min(newline, carriage);
      i = end < 0 ? n : end;
      out += ' ';
    } else if (c === '/' && next === '*') {
      let depth = 1;
      i += 2;
      while (i < n && depth > 0) {
        if (sql.startsWith('/*', i)) {
          depth++;
          i += 2;
        } else if (sql.startsWith('*/', i)) {
          depth--;
          i += 2;
        } else i++;
      }
      out += ' ';
    } else if (c === "'") {
      const escapes = /[eE]/.test(sql[i - 1] ?? '') && !/\w/.test(sql[i - 2] ?? '');
      i++;
      while (i < n) {
        if (escapes && sql[i] === '\\') i += 2;
        else if (sql[i] === "'" && sql[i + 1] === "'") i += 2;
        else if (sql[i] === "'") break;
        else i++;
      }
      i++;
      out += "''";
    } else if (c === '"') {
      const end = sql.indexOf('"', i + 1);
      out += (end < 0 ? sql.slice(i + 1) : sql.slice(i + 1, end)).toLowerCase();
      i = end < 0 ? n : end + 1;
    } else if (c === '$' && !/\w/.test(sql[i - 1] ?? '')) {
      // A tag starts with a letter or _ and goes on with letters, digits and _ (PostgreSQL's
      // dolq_start / dolq_cont, non-ASCII letters included).
      const tag = /^\$(?:[A-Za-z_\u0080-\uffff][A-Za-z_0-9\u0080-\uffff]*)?\$/.exec(
        sql.slice(i, i + 80),
      )?.[0];
      if (tag) {
        const end = sql.indexOf(tag, i + tag.length);
        i = end < 0 ? n : end + tag.length;
        out += "''";
      } else {
        out += c;
        i++;
      }
    } else {
      out += c.toLowerCase();
      i++;
    }
  }
  return out;
}

/** Why `sql` is refused, or `undefined` when the gateway lets it through. */
export function refusedStatement(sql: string): string | undefined {
  if (!SUSPECT.test(sql)) return undefined;
  if (SET_CONFIG.test(sql)) return 'set_config of role, session_authorization or tenantry.* parameters';
  const normalized = normalizeSql(sql);
  for (const [pattern, what] of CALLS) if (pattern.test(normalized)) return what;
  for (const statement of normalized.split(';')) {
    const text = statement.trim().replace(/\s+/g, ' ');
    for (const [pattern, what] of STATEMENTS) if (pattern.test(text)) return what;
  }
  return undefined;
}
