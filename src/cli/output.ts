import type { FieldDef } from 'pg';

/** Writes one line to stdout (the CLI's data channel). */
export function out(line = ''): void {
  process.stdout.write(`${line}\n`);
}

/** Writes one line to stderr (messages, progress, errors). */
export function err(line: string): void {
  process.stderr.write(`${line}\n`);
}

function cell(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (value instanceof Date) return value.toISOString();
  if (Buffer.isBuffer(value)) return `\\x${value.toString('hex')}`;
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
    return value.toString();
  return JSON.stringify(value) ?? '';
}

/** Prints rows as an aligned text table (psql style) with a row count. */
export function printTable(
  rows: readonly Record<string, unknown>[],
  fields?: readonly Pick<FieldDef, 'name'>[],
): void {
  const columns = fields?.map((f) => f.name) ?? Object.keys(rows[0] ?? {});
  if (columns.length === 0) {
    out(`(${rows.length} ${rows.length === 1 ? 'row' : 'rows'})`);
    return;
  }
  const cells = rows.map((row) => columns.map((c) => cell(row[c])));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i]?.length ?? 0)));
  out(columns.map((c, i) => ` ${c.padEnd(widths[i] ?? 0)} `).join('|'));
  out(widths.map((w) => '-'.repeat(w + 2)).join('+'));
  for (const row of cells) out(row.map((v, i) => ` ${v.padEnd(widths[i] ?? 0)} `).join('|'));
  out(`(${rows.length} ${rows.length === 1 ? 'row' : 'rows'})`);
}

/**
 * Prints rows as one JSON array of row objects: integers as numbers, bigint and numeric as
 * strings (as node-postgres returns them), timestamps as ISO strings.
 */
export function printJson(value: unknown): void {
  out(JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)));
}
