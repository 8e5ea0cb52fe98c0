// Encryption at rest for tenant credentials: AES-256-GCM under a rotatable master key ring.
export { KeyRing, MASTER_KEY_BYTES, generateMasterKey, keyIdOf } from './key-ring.js';
export { SEALED_VALUE_VERSION, sealedKeyId } from './sealed-value.js';
export { loadOrCreateKeyFile, replaceKeyFile } from './key-file.js';
export type { KeyFile } from './key-file.js';
export { KEY_CHECK_FIELD, KEY_CHECK_OWNER, createKeyCheck, verifyKeyCheck } from './key-check.js';
