export { ServerRegistry, deriveBudget } from './server-registry.js';
export type { ServerInfo } from './server-registry.js';
