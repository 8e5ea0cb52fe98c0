import type { Placement } from './placement.js';

/** Where `tenantry tenant move` can put a tenant. */
export type MoveTarget = 'shared' | 'schema' | 'database';

/** Options of {@link TenantMoves.move}. */
export interface MoveOptions {
  /** The isolation model to move to. */
  readonly to: MoveTarget;
  /** Registered server of the new copy (default `main`; shared tables are always on `main`). */
  readonly server?: string;
  /** Hears every step (for progress output). */
  readonly onProgress?: (event: MoveProgress) => void;
  /** Stops the copy or catch-up between batches; rerun to resume. */
  readonly signal?: AbortSignal;
  /** Longest wait for transactions open when the triggers or the fence committed (default 30 s). */
  readonly fenceTimeoutMs?: number;
  /** Catch-up rounds go on until one applies fewer captured changes than this (default 200). */
  readonly cutoverBelow?: number;
}

/** A step of a move, for progress output. */
export interface MoveProgress {
  readonly phase: 'prepare' | 'copy' | 'catchup' | 'cutover' | 'cleanup' | 'done';
  /** Rows copied so far (copy). */
  readonly rows?: number;
  /** The table being copied. */
  readonly table?: string;
  /** Captured changes applied so far (catch-up). */
  readonly changes?: number;
  readonly message?: string;
}

/** What a finished move measured. */
export interface MoveReport {
  readonly tenant: string;
  readonly from: Placement;
  readonly to: Placement;
  /** Rows in the snapshot copy. */
  readonly rows: number;
  /** Captured changes applied after the snapshot (this run). */
  readonly changes: number;
  /** The snapshot copy (COPY of every table). */
  readonly copyMs: number;
  /** Comparing the snapshot copy with its snapshot (counts and checksums), outside the pause. */
  readonly snapshotVerifyMs: number;
  /** How long the tenant's writes were refused: from the fence to the catalog switch. */
  readonly pauseMs: number;
  readonly totalMs: number;
  /** Tables whose row counts and checksums matched at the cut-over. */
  readonly verifiedTables: number;
  /**
   * The parts of the write pause, when this run did the cut-over: waiting for transactions open
   * at the fence, draining the last changes, verifying (`changed rows`: counts plus checksums of
   * the rows changed since the verified snapshot copy; `full`: every row, after a resume).
   */
  readonly pause:
    { waitMs: number; drainMs: number; verifyMs: number; verify: 'full' | 'changed rows' } | undefined;
}

/** A move under way, as `tenantry.tenant_move` records it. */
export interface MoveRow {
  readonly tenantId: number;
  readonly source: Placement;
  readonly target: Placement;
  readonly phase: 'prepare' | 'copy' | 'catchup' | 'cleanup';
  /** The last captured change applied to the new copy (a bigint as text). */
  readonly applied: string;
  readonly stats: Record<string, unknown>;
}
