export { buildHttp, startHttp } from './server.js';
export type { HttpOptions, HttpServer } from './server.js';
export { AdminToken } from './admin-token.js';
