/**
 * Advisory-lock keys that several modules take on the same thing. Each is used with a second
 * key (the tenant id), so it never collides with another tenant's lock.
 */

/**
 * Held (session level) by the process moving a tenant, for the whole move; a tenant drop takes
 * it for its transaction, so neither runs while the other does.
 */
export const MOVE_LOCK = 730344620;
