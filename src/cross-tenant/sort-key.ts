/**
 * Sort keys of a cross-tenant scan's `orderBy` merge. PostgreSQL sorts each stream and tenantry
 * merges the streams, so both must agree on one order: the key is cast in SQL to one of four
 * kinds whose PostgreSQL order JavaScript reproduces exactly — float8, numeric (exact, also for
 * bigint and for dates and times as epoch seconds), boolean, and text in the "C" collation
 * (code-point order). Keys of other types compare by their text form.
 */

/** How a sort key is compared. */
export type KeyKind = 'float' | 'numeric' | 'boolean' | 'text';

const FLOAT_TYPES = new Set([21, 23, 700, 701]); // int2, int4, float4, float8
const NUMERIC_TYPES = new Set([20, 26, 790, 1700]); // int8, oid, money, numeric
const TIME_TYPES = new Set([1082, 1083, 1114, 1184, 1186]); // date, time, timestamp(tz), interval
const BOOLEAN = 16;

/** The kind of a key whose PostgreSQL type is `typeOid`. */
export function keyKind(typeOid: number): KeyKind {
  if (FLOAT_TYPES.has(typeOid)) return 'float';
  if (NUMERIC_TYPES.has(typeOid) || TIME_TYPES.has(typeOid)) return 'numeric';
  if (typeOid === BOOLEAN) return 'boolean';
  return 'text';
}

/** The SQL expression of the key column: `expr` of type `typeOid`, cast to its kind. */
export function keySql(expr: string, typeOid: number): string {
  if (TIME_TYPES.has(typeOid)) return `EXTRACT(EPOCH FROM (${expr}))`;
  switch (keyKind(typeOid)) {
    case 'float':
      return `(${expr})::pg_catalog.float8`;
    case 'numeric':
      return `(${expr})::pg_catalog.numeric`;
    case 'boolean':
      return `(${expr})::pg_catalog.bool`;
    case 'text':
      return `((${expr})::pg_catalog.text COLLATE "C")`;
  }
}

/** The type of the key column in a column definition list. */
export function keyColumnType(kind: KeyKind): string {
  switch (kind) {
    case 'float':
      return 'pg_catalog.float8';
    case 'numeric':
      return 'pg_catalog.numeric';
    case 'boolean':
      return 'pg_catalog.bool';
    case 'text':
      return 'pg_catalog.text COLLATE "C"';
  }
}

const ABOVE_D800 = /[\ud800-\uffff]/;

/** Maps UTF-16 code units so that surrogates sort after U+E000–U+FFFF (code-point order). */
function codePointUnit(unit: number): number {
  if (unit >= 0xd800 && unit <= 0xdfff) return unit + 0x2000;
  if (unit >= 0xe000) return unit - 0x800;
  return unit;
}

/**
 * A string whose UTF-16 order (JavaScript's `<`) is the code-point order of `text` — PostgreSQL's
 * "C" collation on UTF-8. Only strings with units from U+D800 up need a change.
 */
export function codePointKey(text: string): string {
  if (!ABOVE_D800.test(text)) return text;
  let out = '';
  for (let i = 0; i < text.length; i++) out += String.fromCharCode(codePointUnit(text.charCodeAt(i)));
  return out;
}

const NINES = '999999';

function complement(digits: string): string {
  let out = '';
  for (let i = 0; i < digits.length; i++) out += String.fromCharCode(0x69 - digits.charCodeAt(i));
  return out;
}

/**
 * A string whose order (JavaScript's `<`) is PostgreSQL's order of the numeric text `value`
 * (`-12.50`, `NaN`, `Infinity`): class, then digit count of the integer part, then the digits;
 * negative numbers complemented and closed with `:`, so a longer magnitude sorts first.
 */
export function decimalKey(value: string): string {
  if (value === 'NaN') return '4';
  if (value === 'Infinity') return '3';
  if (value === '-Infinity') return '0';
  const negative = value.startsWith('-');
  const [whole = '', fraction = ''] = (negative ? value.slice(1) : value).split('.');
  const int = whole.replace(/^0+/, '');
  const digits = (int + fraction).replace(/0+$/, '');
  if (digits === '') return '2';
  const length = String(int.length).padStart(NINES.length, '0');
  return negative ? `1${complement(length)}${complement(digits)}:` : `2${length}${digits}`;
}

function compareFloat(a: number, b: number): number {
  if (a === b) return 0;
  if (Number.isNaN(a)) return Number.isNaN(b) ? 0 : 1;
  if (Number.isNaN(b)) return -1;
  return a < b ? -1 : 1;
}

function compareStrings(a: unknown, b: unknown): number {
  const x = a as string;
  const y = b as string;
  return x < y ? -1 : x > y ? 1 : 0;
}

/** How each key of `kind` is mapped as it arrives, so that the merge compares cheaply. */
export function keyNormalizer(kind: KeyKind): ((key: unknown) => unknown) | undefined {
  if (kind === 'text') return (key) => (typeof key === 'string' ? codePointKey(key) : key);
  if (kind === 'numeric') return (key) => (typeof key === 'string' ? decimalKey(key) : key);
  return undefined;
}

/**
 * The comparator of normalized keys of a kind ({@link keyNormalizer}); NULL sorts last, as
 * `NULLS LAST` in the streams' ORDER BY.
 */
export function keyComparator(kind: KeyKind): (a: unknown, b: unknown) => number {
  const compare =
    kind === 'float'
      ? (a: unknown, b: unknown) => compareFloat(Number(a), Number(b))
      : kind === 'boolean'
        ? (a: unknown, b: unknown) => Number(a === true) - Number(b === true)
        : compareStrings;
  return (a, b) => {
    if (a === null || a === undefined) return b === null || b === undefined ? 0 : 1;
    if (b === null || b === undefined) return -1;
    return compare(a, b);
  };
}
