import { hash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { OperatorDb } from '../tenantry.js';

const SETTING = 'admin_token_sha256';
/** Tokens whose answer {@link AdminToken.matches} remembers at most, and their longest length. */
const REMEMBERED_ANSWERS = 4096;
const REMEMBERED_LENGTH = 2048;

/** SHA-256 of a token (one-shot `crypto.hash`: checked on every HTTP request, no Hash object). */
function digest(token: string): Buffer {
  return hash('sha256', token, 'buffer');
}

/**
 * The HTTP admin token: `TENANTRY_ADMIN_TOKEN` when set, else one generated on first start,
 * stored only as its SHA-256 in `tenantry.setting` (a 256-bit random token needs no slow hash)
 * and shown once. Compared in constant time.
 */
export class AdminToken {
  readonly #digest: Buffer;
  readonly #answers = new Map<string, boolean>();

  private constructor(digestBytes: Buffer) {
    this.#digest = digestBytes;
  }

  /**
   * Loads the admin token. Answers the token in clear only when it was generated now (print it
   * once); `fromEnv` (TENANTRY_ADMIN_TOKEN) wins over the stored one.
   */
  static async load(
    operator: OperatorDb,
    fromEnv?: string,
  ): Promise<{ admin: AdminToken; generated?: string }> {
    if (fromEnv !== undefined && fromEnv.length > 0) return { admin: new AdminToken(digest(fromEnv)) };
    const { rows } = await operator.query<{ value: string }>(
      'SELECT value FROM tenantry.setting WHERE name = $1',
      [SETTING],
    );
    const stored = rows[0]?.value;
    if (stored) return { admin: new AdminToken(Buffer.from(stored, 'hex')) };
    return AdminToken.rotate(operator);
  }

  /** Generates a new token, stores its digest (replacing the old one) and answers it once. */
  static async rotate(operator: OperatorDb): Promise<{ admin: AdminToken; generated: string }> {
    const token = `tnt_admin_${randomBytes(32).toString('base64url')}`;
    const hash = digest(token);
    await operator.query(
      `INSERT INTO tenantry.setting (name, value) VALUES ($1, $2)
       ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value`,
      [SETTING, hash.toString('hex')],
    );
    return { admin: new AdminToken(hash), generated: token };
  }

  /**
   * Whether `token` is the admin token. Every tenant-data request asks this of its bearer token
   * first; the answers for recent tokens are remembered (a bounded map), so that a service sending
   * the same token on each request is not hashed each time.
   */
  matches(token: string): boolean {
    const known = this.#answers.get(token);
    if (known !== undefined) return known;
    const answer = timingSafeEqual(digest(token), this.#digest);
    if (token.length <= REMEMBERED_LENGTH) {
      if (this.#answers.size >= REMEMBERED_ANSWERS) this.#answers.clear();
      this.#answers.set(token, answer);
    }
    return answer;
  }
}
