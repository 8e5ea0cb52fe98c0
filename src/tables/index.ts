export { TableRegistry } from './table-registry.js';
export { SequenceRegistry } from './sequence-registry.js';
export type { CreateSequenceOptions, SequenceInfo } from './sequence-registry.js';
export { GroupRegistry } from './group-registry.js';
export type { GroupInfo, MemberOptions } from './group-registry.js';
export { Segments } from './segments.js';
export type { MigrateDefaultResult } from './segments.js';
