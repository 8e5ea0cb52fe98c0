// Sign-on (seed 004): domains map users to tenants; users log in to sealed principals.
export { AuthenticatorRegistry } from './authenticators.js';
export type { AuthenticationRequest, Authenticator } from './authenticators.js';
export { DomainStore, ACCESS_CODE_FIELD, domainCredentialOwner } from './domain-store.js';
export type { AddDomainOptions, AddedDomain, Domain } from './domain-store.js';
export { BUILTIN_AUTH, PERMISSIONS, formatUserRef, parseUserRef } from './names.js';
export type { Permission, UserRef } from './names.js';
export { hashPassword, verifyPassword } from './password.js';
export { DEFAULT_PRINCIPAL_TTL_SECONDS, PRINCIPAL_TYPE, PrincipalSealer } from './principals.js';
export type { Principal, PrincipalInput } from './principals.js';
export { SignOn } from './sign-on.js';
export type { LoginOptions } from './sign-on.js';
export { UserStore } from './user-store.js';
export { CachedUserStore, UserCache } from './user-cache.js';
export type { UserCacheOptions, UserCacheStats } from './user-cache.js';
export type { AddUserOptions, User, UserRecord } from './user-store.js';
export { DELEGATION_TYPE, DelegationTokens } from './delegation.js';
export type { Delegation, DelegationInput } from './delegation.js';
export {
  mockScramVerifier,
  parseScramVerifier,
  scramVerifier,
  serverSignature,
  verifyClientProof,
} from './scram.js';
export type { ScramVerifier } from './scram.js';
export { tryParseUserRef } from './names.js';
export { RevocationCache } from './revocations.js';
