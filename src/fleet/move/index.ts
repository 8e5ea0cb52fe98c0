export { TenantMoves } from './tenant-moves.js';
export type { MoverDeps } from './deps.js';
export type { Placement } from './placement.js';
export type { MoveOptions, MoveProgress, MoveReport, MoveRow, MoveTarget } from './types.js';
