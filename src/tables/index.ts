export { TableRegistry } from './table-registry.js';
