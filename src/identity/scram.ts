import { createHash, createHmac, pbkdf2, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * SCRAM-SHA-256 (RFC 5802, RFC 7677) verifiers, stored as PostgreSQL stores them in
 * `pg_authid.rolpassword`: `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` (base64).
 * The gateway authenticates `user@domain` logins with them; the password itself never crosses
 * the wire and is not stored.
 */
export interface ScramVerifier {
  readonly iterations: number;
  readonly salt: Buffer;
  readonly storedKey: Buffer;
  readonly serverKey: Buffer;
}

/** PostgreSQL's default iteration count. */
const ITERATIONS = 4096;
const FORMAT =
  /^SCRAM-SHA-256\$(\d{1,7}):([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2}):([A-Za-z0-9+/]+={0,2})$/;

function hmac(key: Buffer, data: string | Buffer): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

function sha256(data: Buffer): Buffer {
  return createHash('sha256').update(data).digest();
}

function saltedPassword(password: string, salt: Buffer, iterations: number): Promise<Buffer> {
  // SASLprep is approximated by NFKC, as PostgreSQL's pg_saslprep does for printable input.
  return new Promise((resolve, reject) =>
    pbkdf2(password.normalize('NFKC'), salt, iterations, 32, 'sha256', (error, key) =>
      error ? reject(error) : resolve(key),
    ),
  );
}

/** Derives the verifier of `password` (fresh salt unless given) and answers its stored form. */
export async function scramVerifier(password: string, salt = randomBytes(16)): Promise<string> {
  const salted = await saltedPassword(password, salt, ITERATIONS);
  const storedKey = sha256(hmac(salted, 'Client Key'));
  const serverKey = hmac(salted, 'Server Key');
  return `SCRAM-SHA-256$${ITERATIONS}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

/** Parses a stored verifier; `undefined` when malformed. */
export function parseScramVerifier(stored: string | null | undefined): ScramVerifier | undefined {
  const match = typeof stored === 'string' ? FORMAT.exec(stored) : null;
  if (!match) return undefined;
  const [, iterations = '', salt = '', storedKey = '', serverKey = ''] = match;
  const count = Number(iterations);
  if (count < 1 || count > 10_000_000) return undefined;
  return {
    iterations: count,
    salt: Buffer.from(salt, 'base64'),
    storedKey: Buffer.from(storedKey, 'base64'),
    serverKey: Buffer.from(serverKey, 'base64'),
  };
}

/**
 * A verifier for a user that does not exist, derived from the name and a per-process secret:
 * the exchange then looks the same as for a real user (stable salt, same iterations) and fails
 * only at the proof, so logins cannot enumerate users.
 */
export function mockScramVerifier(user: string, secret: Buffer): ScramVerifier {
  const seed = hmac(secret, user);
  return {
    iterations: ITERATIONS,
    salt: seed.subarray(0, 16),
    storedKey: hmac(seed, 'stored'),
    serverKey: hmac(seed, 'server'),
  };
}

/** Checks a client proof: H(proof XOR HMAC(StoredKey, AuthMessage)) must equal StoredKey. */
export function verifyClientProof(verifier: ScramVerifier, authMessage: string, proof: Buffer): boolean {
  const signature = hmac(verifier.storedKey, authMessage);
  if (proof.length !== signature.length) return false;
  const clientKey = Buffer.alloc(proof.length);
  for (let i = 0; i < proof.length; i++) clientKey[i] = (proof[i] ?? 0) ^ (signature[i] ?? 0);
  return timingSafeEqual(sha256(clientKey), verifier.storedKey);
}

/** The server signature sent in the final SCRAM message. */
export function serverSignature(verifier: ScramVerifier, authMessage: string): Buffer {
  return hmac(verifier.serverKey, authMessage);
}
