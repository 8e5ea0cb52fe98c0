import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

/**
 * Password hashes: scrypt with N=16384, r=8, p=1, a 16-byte random salt and a 32-byte key,
 * stored as `scrypt$N$r$p$salt$hash` (salt and hash base64). The parameters travel with each
 * hash, so they can be raised later without invalidating stored ones.
 */
const COST = { N: 16384, r: 8, p: 1 } as const;
const SALT_BYTES = 16;
const KEY_BYTES = 32;
const FORMAT = /^scrypt\$(\d{1,7})\$(\d{1,2})\$(\d{1,2})\$([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2})$/;

function derive(password: string, salt: Buffer, length: number, cost: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // maxmem: 128 * N * r bytes plus headroom, so raised parameters still derive.
    const maxmem = 256 * (cost.N ?? COST.N) * (cost.r ?? COST.r);
    scrypt(password.normalize('NFC'), salt, length, { ...cost, maxmem }, (error, key) =>
      error ? reject(error) : resolve(key),
    );
  });
}

/** Hashes `password` with a fresh salt; use it before storing a user's password. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const hash = await derive(password, salt, KEY_BYTES, COST);
  return `scrypt$${COST.N}$${COST.r}$${COST.p}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

interface ParsedHash {
  readonly cost: ScryptOptions;
  readonly salt: Buffer;
  readonly hash: Buffer;
}

function parseHash(stored: string): ParsedHash | undefined {
  const match = FORMAT.exec(stored);
  if (!match) return undefined;
  const [, n = '', r = '', p = '', salt = '', hash = ''] = match;
  const N = Number(n);
  // Bounded so a tampered row cannot make a login allocate gigabytes.
  if (N < 2 || N > 1 << 20 || (N & (N - 1)) !== 0 || Number(r) < 1 || Number(r) > 32) return undefined;
  if (Number(p) < 1 || Number(p) > 16) return undefined;
  const decoded = Buffer.from(hash, 'base64');
  if (decoded.length < 16) return undefined;
  return { cost: { N, r: Number(r), p: Number(p) }, salt: Buffer.from(salt, 'base64'), hash: decoded };
}

let dummy: Promise<string> | undefined;

/** A hash of a random password, for checking logins of unknown users at the same cost. */
function dummyHash(): Promise<string> {
  dummy ??= hashPassword(randomBytes(16).toString('hex'));
  return dummy;
}

/**
 * Whether `password` matches `stored` (compared in constant time). With `stored` undefined
 * (an unknown user) it still derives a key against a dummy hash, so both answers take as long,
 * and answers false. A malformed stored hash never matches.
 */
export async function verifyPassword(password: string, stored: string | null | undefined): Promise<boolean> {
  const known = typeof stored === 'string' ? parseHash(stored) : undefined;
  const parsed = known ?? parseHash(await dummyHash());
  if (!parsed) return false;
  const candidate = await derive(password, parsed.salt, parsed.hash.length, parsed.cost);
  return known !== undefined && timingSafeEqual(candidate, parsed.hash);
}
