import type { Tenant } from '../catalog/index.js';
import type { PreludeStatement } from '../session/index.js';
import type { ScanRow } from './scan.js';
import type { ScanSession } from './session.js';

/** What a {@link CursorStream} reads and how its rows map to scan rows. */
export interface StreamSpec {
  readonly session: ScanSession;
  /** One query (SELECT, VALUES, TABLE, WITH) the cursor runs. */
  readonly query: string;
  readonly values?: readonly unknown[];
  /** Settings of the stream's tenant, sent with the DECLARE and every FETCH (none for a batch). */
  readonly settings: readonly PreludeStatement[];
  /** Run DECLARE and FETCH in savepoints (see {@link ScanSession.run}). */
  readonly guard: boolean;
  /** Rows per FETCH: the stream never holds more. */
  readonly fetchSize: number;
  /** A single tenant's stream: every row is this tenant's. */
  readonly tenant?: Tenant;
  /** A batch's stream: the first column of each row is its tenant's id. */
  readonly tenants?: ReadonlyMap<number, Tenant>;
  /** Column names (a batch's, from the scan's describe); otherwise read from the first FETCH. */
  readonly names?: readonly string[];
  /** Whether the last column is the merge key (not part of the row). */
  readonly keyed: boolean;
  /** A batch's: the setting tenantry.scan_tenants() reports the tenants it left out in. */
  readonly report?: string;
  /** Maps each merge key once, as it arrives, to the form the merge compares. */
  readonly normalizeKey?: (key: unknown) => unknown;
}

/**
 * One server-side cursor read in batches of `fetchSize` rows: the stream of one tenant, or of a
 * batch of tenants queried in one statement by tenantry.scan_tenants(). The head row is read
 * synchronously; once half the buffer is read the next batch is fetched in the background, so
 * a stream holds at most two batches and the merge seldom waits for a round trip.
 */
export class CursorStream {
  readonly spec: StreamSpec;
  readonly #name: string;
  #rows: unknown[][] = [];
  #pos = 0;
  /** The cursor has returned its last rows: no FETCH follows. */
  #ended = false;
  #prefetch: Promise<unknown[][]> | undefined;
  #names: readonly string[] = [];
  readonly #offset: number;
  /** Tenants a batch left out (to be scanned on their own); their rows are dropped here. */
  readonly fallbacks: number[] = [];
  readonly #dropped = new Set<number>();

  constructor(spec: StreamSpec) {
    this.spec = spec;
    this.#name = spec.session.cursorName();
    this.#offset = spec.tenants ? 1 : 0;
    this.#names = spec.names ?? [];
  }

  /** Declares the cursor. */
  async declare(): Promise<void> {
    const { session, query, values, settings, guard } = this.spec;
    await session.run(`DECLARE ${this.#name} NO SCROLL CURSOR FOR ${query}`, {
      settings,
      guard,
      ...(values === undefined ? {} : { values }),
    });
  }

  /** Fetches the first rows (a batch's query has then run whole) and reads a batch's report. */
  async start(): Promise<void> {
    await this.refill();
    if (this.spec.report === undefined) return;
    const { rows } = await this.spec.session.run('SELECT pg_catalog.current_setting($1, true)', {
      values: [this.spec.report],
    });
    const value = rows[0]?.[0];
    const reported = typeof value === 'string' ? value : '';
    for (const id of reported.split(',').filter((s) => s !== '')) this.#dropped.add(Number(id));
    this.fallbacks.push(...this.#dropped);
    if (this.#dropped.size > 0) this.#rows = this.#rows.filter((row) => !this.#dropped.has(row[0] as number));
  }

  /** {@link declare}, then {@link start}. */
  async open(): Promise<void> {
    await this.declare();
    await this.start();
  }

  /** The current row (column values), or `undefined` when the buffer is spent. */
  head(): unknown[] | undefined {
    return this.#rows[this.#pos];
  }

  /** Moves past the head row (and starts fetching the next batch at half the buffer). */
  advance(): void {
    this.#pos++;
    if (!this.#ended && this.#prefetch === undefined && this.#pos * 2 >= this.#rows.length) {
      this.#prefetch = this.#fetch();
      this.#prefetch.catch(() => undefined);
    }
  }

  /** Whether every row has been read. */
  get exhausted(): boolean {
    return this.#ended && this.#prefetch === undefined && this.#pos >= this.#rows.length;
  }

  /** Whether the buffer is spent but more rows may come ({@link refill} next). */
  get needsRefill(): boolean {
    return (!this.#ended || this.#prefetch !== undefined) && this.#pos >= this.#rows.length;
  }

  /** One FETCH: its rows, the merge key made comparable; notes the end of the cursor. */
  async #fetch(): Promise<unknown[][]> {
    const { session, settings, guard, fetchSize } = this.spec;
    const result = await session.run(`FETCH ${fetchSize} FROM ${this.#name}`, { settings, guard });
    if (this.spec.names === undefined && this.#names.length === 0 && result.fields.length > 0) {
      const names = result.fields.map((f) => f.name);
      this.#names = this.spec.keyed ? names.slice(0, -1) : names;
    }
    const normalize = this.spec.normalizeKey;
    if (normalize) {
      for (const row of result.rows) row[row.length - 1] = normalize(row[row.length - 1]);
    }
    if (result.rows.length < fetchSize) {
      this.#ended = true;
      session.deferClose(this.#name);
    }
    return result.rows;
  }

  /** Takes the next rows (skipping rows of tenants a batch left out). */
  async refill(): Promise<void> {
    do {
      const pending = this.#prefetch ?? this.#fetch();
      this.#prefetch = undefined;
      const rows = await pending;
      this.#rows =
        this.#dropped.size === 0 ? rows : rows.filter((row) => !this.#dropped.has(row[0] as number));
      this.#pos = 0;
    } while (this.#rows.length === 0 && (!this.#ended || this.#prefetch !== undefined));
  }

  /** Reads every remaining row into memory (the cursor can then go with its connection). */
  async bufferAll(): Promise<void> {
    const kept = this.#rows.slice(this.#pos);
    while (!this.#ended || this.#prefetch) {
      await this.refill();
      kept.push(...this.#rows);
    }
    this.#rows = kept;
    this.#pos = 0;
  }

  /** The merge key of a row. */
  key(row: unknown[]): unknown {
    return row[row.length - 1];
  }

  /** The tenant a row belongs to. */
  tenantOf(row: unknown[]): Tenant {
    return this.spec.tenant ?? (this.spec.tenants?.get(row[0] as number) as Tenant);
  }

  /** The scan row of a row: its columns by name (a later duplicate name wins, as in pg) and its tenant. */
  toRow(row: unknown[]): ScanRow {
    const out: Record<string, unknown> = {};
    const names = this.#names;
    const offset = this.#offset;
    for (let i = 0; i < names.length; i++) out[names[i] as string] = row[i + offset];
    const tenant = this.tenantOf(row);
    out._tenant_id = tenant.id;
    out._tenant_name = tenant.name;
    return out as ScanRow;
  }
}
