import pg from 'pg';
import { describeUrl } from '../connection-url.js';
import { TenantryError } from '../errors.js';
import { loadFacts } from './facts.js';
import { checkFunctions } from './functions.js';
import { checkGrants } from './grants.js';
import { checkKeys } from './keys.js';
import { checkPlacement } from './placement.js';
import { checkPolicies } from './policies.js';
import { checkRoles } from './roles.js';
import type { AuditReport, Check, Finding, Queryable, Severity } from './types.js';
import { checkViews } from './views.js';
import { checkWall } from './wall.js';

/** Every check, in the order findings are reported within one severity. */
const CHECKS: readonly Check[] = [
  checkPolicies,
  checkKeys,
  checkGrants,
  checkRoles,
  checkViews,
  checkFunctions,
  checkWall,
  checkPlacement,
];

const RANK: Record<Severity, number> = { high: 0, medium: 1, low: 2 };

/** Runs every check on one connection, in one read-only transaction (a consistent snapshot). */
async function run(db: Queryable): Promise<AuditReport> {
  await db.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  try {
    const facts = await loadFacts(db);
    const findings: Finding[] = [];
    for (const check of CHECKS) findings.push(...(await check(db, facts)));
    findings.sort((a, b) => RANK[a.severity] - RANK[b.severity]);
    const summary: Record<Severity, number> = { high: 0, medium: 0, low: 0 };
    for (const f of findings) summary[f.severity]++;
    return { database: facts.database, checkedAt: new Date().toISOString(), findings, summary };
  } finally {
    await db.query('ROLLBACK').catch(() => undefined);
  }
}

/**
 * Inspects a live tenantry database for isolation hazards: multi-tenant tables without forced
 * row-level security or tenantry's policy, keys and indexes without the tenant column, roles
 * tenant SQL runs as with too much power, views and SECURITY DEFINER code that read
 * multi-tenant tables with someone else's rights, TRUNCATE and other grants, sequences shared
 * across tenants, tenants' objects that would trap trusted code, and tenants whose placement
 * disagrees with the catalog. tenantry's own sanctioned objects are not reported.
 *
 * `source` is a connection string (a superuser or the operator who installed tenantry: the
 * catalog's tables are not readable by anyone else), a `pg.Pool` or a connected client. The
 * audit only reads. Throws `TENANTRY_ERR_CATALOG_NOT_INSTALLED` and, for a URL,
 * `TENANTRY_ERR_DATABASE_UNREACHABLE`.
 *
 * @example
 * const report = await audit(process.env.TENANTRY_DATABASE_URL!);
 * if (report.summary.high > 0) process.exitCode = 1;
 */
export async function audit(source: string | pg.Pool | pg.ClientBase): Promise<AuditReport> {
  if (typeof source !== 'string') {
    if (source instanceof pg.Pool) {
      const client = await source.connect();
      try {
        return await run(client);
      } finally {
        client.release();
      }
    }
    return run(source);
  }
  const client = new pg.Client({ connectionString: source, application_name: 'tenantry-audit' });
  try {
    await client.connect();
  } catch (error) {
    throw new TenantryError(
      'DATABASE_UNREACHABLE',
      { where: describeUrl(source), problem: error instanceof Error ? error.message : String(error) },
      { cause: error },
    );
  }
  try {
    return await run(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Whether a report has any high-severity finding (the CLI then exits 1). */
export function hasHighFindings(report: AuditReport): boolean {
  return report.summary.high > 0;
}

/** Wraps `text` at `width` columns, indenting continuation lines by `indent`. */
function wrap(text: string, width: number, indent: string): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line && line.length + word.length + 1 > width) {
      lines.push(line);
      line = indent + word;
    } else line = line ? `${line} ${word}` : indent + word;
  }
  if (line.trim()) lines.push(line);
  return lines;
}

function formatFinding(finding: Finding): string[] {
  return [
    `${finding.severity.toUpperCase().padEnd(6)} ${finding.check}  ${finding.object}`,
    ...wrap(finding.message, 100, '       '),
    ...wrap(`fix: ${finding.fix}`, 100, '       '),
  ];
}

/**
 * A report as lines of text for a terminal: one block per finding, most severe first, then a
 * summary line.
 */
export function formatReport(report: AuditReport): string[] {
  const { high, medium, low } = report.summary;
  const lines: string[] = [`tenantry audit of database ${report.database} (${report.checkedAt})`, ''];
  for (const finding of report.findings) lines.push(...formatFinding(finding), '');
  if (report.findings.length === 0) lines.push('no isolation hazards found', '');
  lines.push(`${high} high, ${medium} medium, ${low} low`);
  return lines;
}
