import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  KeyRing,
  SEALED_VALUE_VERSION,
  createKeyCheck,
  generateMasterKey,
  keyIdOf,
  loadOrCreateKeyFile,
  sealedKeyId,
  verifyKeyCheck,
} from '../src/crypto/index.js';
import { TenantryError, type ErrorCode } from '../src/errors.js';

const PLAINTEXT = 'HomeDepot-s3cret-Pa55word!';
const HOME_DEPOT = 'tenant:5';
const LOWES = 'tenant:6';

/** Every message of a thrown error, to prove the plaintext never leaks into one. */
const messages: string[] = [];

function thrown(fn: () => unknown): TenantryError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(TenantryError);
    const tenantryError = error as TenantryError;
    messages.push(tenantryError.message, JSON.stringify(tenantryError.details), String(tenantryError.cause));
    return tenantryError;
  }
  throw new Error('expected the call to throw');
}

function expectCode(fn: () => unknown, code: ErrorCode): TenantryError {
  const error = thrown(fn);
  expect(error.code).toBe(`TENANTRY_ERR_${code}`);
  return error;
}

/** Replaces part `index` of a sealed value with a different, well-formed-looking part. */
function tamper(sealed: string, index: number, replace: (part: string) => string): string {
  const parts = sealed.split('.');
  parts[index] = replace(parts[index]!);
  return parts.join('.');
}

function flipFirstChar(part: string): string {
  return (part[0] === 'A' ? 'B' : 'A') + part.slice(1);
}

describe('sealed credentials', () => {
  const ring = KeyRing.fromEnv(generateMasterKey());

  it('round-trips a credential sealed for a tenant and field', () => {
    const sealed = ring.seal(PLAINTEXT, HOME_DEPOT, 'password');
    expect(sealed).not.toContain(PLAINTEXT);
    expect(ring.open(sealed, HOME_DEPOT, 'password')).toBe(PLAINTEXT);
    expect(ring.open(ring.seal('', 'server:main', 'password'), 'server:main', 'password')).toBe('');
    expect(ring.open(ring.seal('pässwörd ✓', HOME_DEPOT, 'password'), HOME_DEPOT, 'password')).toBe(
      'pässwörd ✓',
    );
  });

  it('writes the self-describing compact format v1.<keyId>.<iv>.<tag>.<ciphertext>', () => {
    const sealed = ring.seal(PLAINTEXT, HOME_DEPOT, 'password');
    const [version, keyId, iv, tag, ciphertext, ...rest] = sealed.split('.');
    expect(rest).toEqual([]);
    expect(version).toBe(SEALED_VALUE_VERSION);
    expect(keyId).toBe(ring.currentKeyId);
    expect(keyId).toMatch(/^[0-9a-f]{8}$/);
    expect(Buffer.from(iv!, 'base64url')).toHaveLength(12);
    expect(Buffer.from(tag!, 'base64url')).toHaveLength(16);
    expect(Buffer.from(ciphertext!, 'base64url')).toHaveLength(Buffer.byteLength(PLAINTEXT));
    expect(sealedKeyId(sealed)).toBe(ring.currentKeyId);
    expect(sealedKeyId('not a sealed value')).toBeUndefined();
  });

  it('uses a fresh IV for each of 1,000 seals of the same plaintext', () => {
    const ivs = new Set<string>();
    for (let i = 0; i < 1000; i++) ivs.add(ring.seal(PLAINTEXT, HOME_DEPOT, 'password').split('.')[2]!);
    expect(ivs.size).toBe(1000);
  });

  it.each([
    ['version', 0, () => 'v2'],
    ['key id', 1, (part: string) => (part === '00000000' ? '00000001' : '00000000')],
    ['iv', 2, flipFirstChar],
    ['tag', 3, flipFirstChar],
    ['ciphertext', 4, flipFirstChar],
  ])('refuses a value whose %s was altered', (_name, index, replace) => {
    const sealed = ring.seal(PLAINTEXT, HOME_DEPOT, 'password');
    const altered = tamper(sealed, index, replace);
    expect(altered).not.toBe(sealed);
    expectCode(() => ring.open(altered, HOME_DEPOT, 'password'), 'CREDENTIAL_DECRYPT');
  });

  it('refuses a tag whose last character differs only in unused bits', () => {
    const sealed = ring.seal(PLAINTEXT, HOME_DEPOT, 'password');
    const altered = tamper(sealed, 3, (tag) => {
      const last = tag.at(-1)!;
      const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
      const index = alphabet.indexOf(last);
      return tag.slice(0, -1) + alphabet[index ^ 1]!;
    });
    expectCode(() => ring.open(altered, HOME_DEPOT, 'password'), 'CREDENTIAL_DECRYPT');
  });

  it.each([
    ['an empty string', ''],
    ['plain text', PLAINTEXT],
    ['too few parts', 'v1.abcdef01.AAAA'],
    ['too many parts', 'v1.abcdef01.a.b.c.d'],
    ['a truncated value', 'TRUNCATE'],
  ])('refuses a malformed value: %s', (_name, value) => {
    const sealed = ring.seal(PLAINTEXT, HOME_DEPOT, 'password');
    const input = value === 'TRUNCATE' ? sealed.slice(0, -3) : value;
    expectCode(() => ring.open(input, HOME_DEPOT, 'password'), 'CREDENTIAL_DECRYPT');
  });

  it('refuses a value opened for another owner or another field', () => {
    const sealed = ring.seal(PLAINTEXT, HOME_DEPOT, 'password');
    const error = expectCode(() => ring.open(sealed, LOWES, 'password'), 'CREDENTIAL_DECRYPT');
    expect(error.message).toContain('Cannot decrypt the password credential of tenant:6');
    expect(error.message).toContain('Check TENANTRY_MASTER_KEY');
    expect(error.status).toBe(500);
    expect(error.sqlstate).toBe('F0000');
    expectCode(() => ring.open(sealed, HOME_DEPOT, 'username'), 'CREDENTIAL_DECRYPT');
  });

  it('refuses a value sealed with a key that is not in the ring', () => {
    const sealed = ring.seal(PLAINTEXT, HOME_DEPOT, 'password');
    const other = KeyRing.fromEnv(generateMasterKey());
    const error = expectCode(() => other.open(sealed, HOME_DEPOT, 'password'), 'CREDENTIAL_DECRYPT');
    expect(error.message).toContain(`sealed with key ${ring.currentKeyId}, which is not in the key ring`);
  });

  it('refuses owners and fields that would make the associated data ambiguous', () => {
    expectCode(() => ring.seal(PLAINTEXT, '', 'password'), 'INVALID_ARGUMENT');
    expectCode(() => ring.seal(PLAINTEXT, 'tenant 5', 'password'), 'INVALID_ARGUMENT');
    expectCode(() => ring.seal(PLAINTEXT, HOME_DEPOT, 'pass:word'), 'INVALID_ARGUMENT');
  });
});

describe('key rotation with NEW,OLD', () => {
  const oldKey = generateMasterKey();
  const newKey = generateMasterKey();
  const oldRing = KeyRing.fromEnv(oldKey);
  const newRing = KeyRing.fromEnv(newKey);
  const rotating = KeyRing.fromEnv(`${newKey}, ${oldKey}`);

  it('names keys by the first 8 hex characters of their SHA-256', () => {
    expect(rotating.currentKeyId).toBe(newRing.currentKeyId);
    expect(rotating.keyIds).toEqual([newRing.currentKeyId, oldRing.currentKeyId]);
    expect(KeyRing.fromEnv(oldKey).currentKeyId).toBe(keyIdOf(Buffer.from(oldKey, 'base64')));
    expect(rotating.toString()).toBe(`[${newRing.currentKeyId} (current), ${oldRing.currentKeyId}]`);
    expect(JSON.stringify(rotating)).not.toContain(newKey);
    expect(JSON.stringify(rotating)).not.toContain(oldKey);
  });

  it('opens old values, flags them for rotation and reseals them with the new key only', () => {
    const old = oldRing.seal(PLAINTEXT, HOME_DEPOT, 'password');
    expect(rotating.open(old, HOME_DEPOT, 'password')).toBe(PLAINTEXT);
    expect(rotating.needsRotation(old)).toBe(true);

    const resealed = rotating.reseal(old, HOME_DEPOT, 'password');
    expect(rotating.needsRotation(resealed)).toBe(false);
    expect(sealedKeyId(resealed)).toBe(newRing.currentKeyId);
    expect(newRing.open(resealed, HOME_DEPOT, 'password')).toBe(PLAINTEXT);
    expectCode(() => oldRing.open(resealed, HOME_DEPOT, 'password'), 'CREDENTIAL_DECRYPT');
  });

  it('seals new values with the current key', () => {
    const sealed = rotating.seal(PLAINTEXT, LOWES, 'password');
    expect(sealedKeyId(sealed)).toBe(newRing.currentKeyId);
    expect(newRing.open(sealed, LOWES, 'password')).toBe(PLAINTEXT);
  });

  it('refuses to reseal a value for the wrong owner', () => {
    const old = oldRing.seal(PLAINTEXT, HOME_DEPOT, 'password');
    expectCode(() => rotating.reseal(old, LOWES, 'password'), 'CREDENTIAL_DECRYPT');
  });
});

describe('master key parsing', () => {
  const valid = generateMasterKey();

  it.each([
    ['empty', ''],
    ['blank', '   '],
    ['too short', 'c2hvcnQ='],
    ['not base64', 'this is not base64 at all!!'],
    ['31 bytes', randomBytes(31).toString('base64')],
    ['33 bytes', randomBytes(33).toString('base64')],
    ['hex instead of base64', randomBytes(32).toString('hex')],
    ['an empty entry in a list', `${valid},`],
    ['a bad old key in a list', `${valid},${randomBytes(16).toString('base64')}`],
  ])('refuses a master key that is %s', (_name, value) => {
    const error = expectCode(() => KeyRing.fromEnv(value), 'MASTER_KEY_INVALID');
    expect(error.message).toContain('32 random bytes, base64-encoded, e.g. from `openssl rand -base64 32`');
    expect(error.message).toContain('TENANTRY_MASTER_KEY');
    expect(error.status).toBe(500);
    expect(error.sqlstate).toBe('F0000');
    const secret = value.split(',').at(-1)?.trim();
    if (secret) expect(error.message).not.toContain(secret);
  });

  it('accepts a key with surrounding whitespace and the same key listed twice', () => {
    const ring = KeyRing.fromEnv(` ${valid}\n`);
    expect(KeyRing.fromEnv(`${valid},${valid}`).keyIds).toEqual([ring.currentKeyId]);
  });

  it('refuses raw keys of the wrong length', () => {
    expectCode(() => KeyRing.fromKeys(randomBytes(16)), 'MASTER_KEY_INVALID');
    expect(KeyRing.fromKeys(randomBytes(32), [randomBytes(32)]).keyIds).toHaveLength(2);
  });
});

describe.skipIf(process.platform === 'win32')('the key file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tenantry-crypto-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is created with mode 0600 on first start and reused afterwards', () => {
    const path = join(dir, 'nested', 'master.key');
    const first = loadOrCreateKeyFile(path);
    expect(first.created).toBe(true);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(Buffer.from(readFileSync(path, 'utf8').trim(), 'base64')).toHaveLength(32);

    const second = loadOrCreateKeyFile(path);
    expect(second.created).toBe(false);
    expect(second.ring.currentKeyId).toBe(first.ring.currentKeyId);
    const sealed = first.ring.seal(PLAINTEXT, HOME_DEPOT, 'password');
    expect(second.ring.open(sealed, HOME_DEPOT, 'password')).toBe(PLAINTEXT);
  });

  it('refuses a key file that others may read', () => {
    const path = join(dir, 'loose.key');
    writeFileSync(path, `${generateMasterKey()}\n`, { mode: 0o644 });
    chmodSync(path, 0o644);
    const error = expectCode(() => loadOrCreateKeyFile(path), 'MASTER_KEY_INVALID');
    expect(error.message).toContain(path);
    expect(error.message).toContain('0644');
  });

  it('refuses a key file that does not hold a valid key, naming the file', () => {
    const path = join(dir, 'short.key');
    writeFileSync(path, randomBytes(16).toString('base64'), { mode: 0o600 });
    const error = expectCode(() => loadOrCreateKeyFile(path), 'MASTER_KEY_INVALID');
    expect(error.message).toContain(`key file ${path}`);
  });
});

describe('the key check', () => {
  const key = generateMasterKey();
  const ring = KeyRing.fromEnv(key);

  it('passes with the key the check was sealed with, alone or as an old key', () => {
    const check = createKeyCheck(ring);
    expect(() => verifyKeyCheck(ring, check)).not.toThrow();
    expect(() => verifyKeyCheck(KeyRing.fromEnv(`${generateMasterKey()},${key}`), check)).not.toThrow();
  });

  it('detects a master key that does not match the stored credentials', () => {
    const check = createKeyCheck(ring);
    const other = KeyRing.fromEnv(generateMasterKey());
    const error = expectCode(() => verifyKeyCheck(other, check), 'MASTER_KEY_MISMATCH');
    expect(error.message).toContain(
      `key id ${ring.currentKeyId} is not in the key ring [${other.currentKeyId}`,
    );
    expect(error.message).toContain('Pass the original key, or old and new keys as NEW,OLD');
  });

  it('reports an altered key check as damaged, not as a wrong key', () => {
    const check = tamper(createKeyCheck(ring), 4, flipFirstChar);
    expectCode(() => verifyKeyCheck(ring, check), 'CREDENTIAL_DECRYPT');
  });
});

describe('secrecy', () => {
  it('never puts the plaintext or a key into an error message', () => {
    const key = generateMasterKey();
    const ring = KeyRing.fromEnv(key);
    const sealed = ring.seal(PLAINTEXT, HOME_DEPOT, 'password');
    expectCode(() => ring.open(sealed, LOWES, 'password'), 'CREDENTIAL_DECRYPT');
    expectCode(
      () => KeyRing.fromEnv(generateMasterKey()).open(sealed, HOME_DEPOT, 'password'),
      'CREDENTIAL_DECRYPT',
    );
    expectCode(
      () => ring.open(tamper(sealed, 4, flipFirstChar), HOME_DEPOT, 'password'),
      'CREDENTIAL_DECRYPT',
    );
    expectCode(() => KeyRing.fromEnv(`${key},${key.slice(0, 20)}`), 'MASTER_KEY_INVALID');

    expect(messages.length).toBeGreaterThan(30);
    for (const message of messages) {
      expect(message).not.toContain(PLAINTEXT);
      expect(message).not.toContain(key);
      expect(message).not.toContain(key.slice(0, 20));
    }
  });
});
