export { TableRegistry } from './table-registry.js';
export { SequenceRegistry } from './sequence-registry.js';
export type { CreateSequenceOptions, SequenceInfo } from './sequence-registry.js';
