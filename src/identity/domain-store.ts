import { inTransaction } from '../catalog/index.js';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { CredentialStore, Tenant, TenantRef } from '../catalog/index.js';
import { TenantryError } from '../errors.js';
import { BUILTIN_AUTH, checkAuthSystem, checkDomainName } from './names.js';

/** The credential field a domain's access code is sealed under (owner `domain:<name>`). */
export const ACCESS_CODE_FIELD = 'access-code';

/** The credential owner of a domain's secrets: `domain:` and its lower-case name. */
export function domainCredentialOwner(name: string): string {
  return `domain:${name.toLowerCase()}`;
}

/** A sign-on domain as recorded in the catalog. */
export interface Domain {
  /** Its name as first written (`''`: the blank domain of the default tenant). */
  readonly name: string;
  /** The tenant its users act for. */
  readonly tenant: { readonly id: number; readonly name: string };
  /** `builtin` or the name of a registered authenticator. */
  readonly authSystem: string;
  readonly createdAt: Date;
}

/** What {@link DomainStore.add} answers: the domain and its new access code (shown once). */
export interface AddedDomain extends Domain {
  readonly accessCode: string;
}

/** Options of {@link DomainStore.add}. */
export interface AddDomainOptions {
  /** The tenant (id, uuid or name) the domain's users act for. */
  readonly tenant: TenantRef;
  /** `builtin` (default) or the name of an authenticator registered with `authenticators.register`. */
  readonly authSystem?: string;
}

interface DomainRow {
  display_name: string;
  tenant_id: number;
  tenant_name: string;
  auth_system: string;
  created_at: Date;
}

const SELECT = `SELECT d.display_name, d.tenant_id, t.name AS tenant_name, d.auth_system, d.created_at
  FROM tenantry.domain d JOIN tenantry.tenant t ON t.id = d.tenant_id`;

function toDomain(row: DomainRow): Domain {
  return {
    name: row.display_name,
    tenant: { id: row.tenant_id, name: row.tenant_name },
    authSystem: row.auth_system,
    createdAt: row.created_at,
  };
}

/** Sign-on domains (seed 004): each maps its users to one tenant. */
export class DomainStore {
  readonly #pool: pg.Pool;
  readonly #credentials: CredentialStore;
  readonly #resolveTenant: (ref: TenantRef) => Promise<Tenant>;
  readonly #onChange: () => unknown;

  constructor(options: {
    pool: pg.Pool;
    credentials: CredentialStore;
    resolveTenant: (ref: TenantRef) => Promise<Tenant>;
    /** Called after a domain was added or removed (this process's caches of users follow at once). */
    onChange?: () => unknown;
  }) {
    this.#pool = options.pool;
    this.#credentials = options.credentials;
    this.#resolveTenant = options.resolveTenant;
    this.#onChange = options.onChange ?? (() => undefined);
  }

  /**
   * Adds domain `name` for a tenant, with a fresh random access code sealed in the catalog.
   * Needs a master key. Throws `TENANTRY_ERR_INVALID_ARGUMENT`, `TENANTRY_ERR_DOMAIN_EXISTS`,
   * `TENANTRY_ERR_TENANT_NOT_FOUND`, `TENANTRY_ERR_TENANT_KIND` (a group is no tenant to act as)
   * and `TENANTRY_ERR_MASTER_KEY_INVALID`.
   */
  async add(name: string, options: AddDomainOptions): Promise<AddedDomain> {
    checkDomainName(name, false);
    const authSystem = checkAuthSystem(options.authSystem ?? BUILTIN_AUTH);
    const tenant = await this.#resolveTenant(options.tenant);
    if (tenant.kind === 'group') {
      throw new TenantryError('TENANT_KIND', {
        tenant: tenant.name,
        kind: 'group',
        problem: 'a group is a data segment; give the domain one of its member tenants',
      });
    }
    const accessCode = randomBytes(24).toString('base64url');
    try {
      await inTransaction(this.#pool, async (client) => {
        await client.query(
          'INSERT INTO tenantry.domain (name, display_name, tenant_id, auth_system) VALUES (lower($1), $1, $2, $3)',
          [name, tenant.id, authSystem],
        );
        await this.#credentials.put(client, domainCredentialOwner(name), ACCESS_CODE_FIELD, accessCode);
      });
    } catch (error) {
      if (error instanceof pg.DatabaseError && error.code === '23505') {
        throw new TenantryError('DOMAIN_EXISTS', { domain: name }, { cause: error });
      }
      // The tenant was dropped since it was resolved.
      if (error instanceof pg.DatabaseError && error.code === '23503') {
        throw new TenantryError('TENANT_NOT_FOUND', { tenant: tenant.name }, { cause: error });
      }
      throw error;
    }
    this.#onChange();
    return { ...(await this.show(name)), accessCode };
  }

  /** Every domain, the blank one first, then by name. */
  async list(): Promise<Domain[]> {
    const { rows } = await this.#pool.query<DomainRow>(`${SELECT} ORDER BY d.name`);
    return rows.map(toDomain);
  }

  /** One domain by name (case-insensitive; `''` the blank one); throws `TENANTRY_ERR_DOMAIN_NOT_FOUND`. */
  async show(name: string): Promise<Domain> {
    const domain = await this.find(name);
    if (!domain) throw new TenantryError('DOMAIN_NOT_FOUND', { domain: String(name) });
    return domain;
  }

  /** One domain by name, or `undefined` (a primary-key lookup). */
  async find(name: string): Promise<Domain | undefined> {
    if (typeof name !== 'string') return undefined;
    const { rows } = await this.#pool.query<DomainRow>(`${SELECT} WHERE d.name = lower($1)`, [name]);
    return rows[0] ? toDomain(rows[0]) : undefined;
  }

  /**
   * The domain's access code, opened with the master key; the blank domain gets one on first
   * use. Throws `TENANTRY_ERR_DOMAIN_NOT_FOUND` and `TENANTRY_ERR_MASTER_KEY_INVALID`.
   */
  async accessCode(name: string): Promise<string> {
    const domain = await this.show(name);
    const owner = domainCredentialOwner(domain.name);
    const { rows } = await this.#pool.query(
      'SELECT 1 FROM tenantry.credential WHERE owner = $1 AND field = $2',
      [owner, ACCESS_CODE_FIELD],
    );
    if (rows.length === 0) {
      await this.#credentials.put(
        this.#pool,
        owner,
        ACCESS_CODE_FIELD,
        randomBytes(24).toString('base64url'),
      );
    }
    return this.#credentials.get(owner, ACCESS_CODE_FIELD);
  }

  /**
   * Removes a domain with its users and access code. Throws `TENANTRY_ERR_DOMAIN_NOT_FOUND`, and
   * `TENANTRY_ERR_INVALID_ARGUMENT` for the blank domain, which always exists.
   */
  async remove(name: string): Promise<void> {
    if (name === '') {
      throw new TenantryError('INVALID_ARGUMENT', {
        what: 'domain',
        problem: 'the blank domain belongs to the default tenant and always exists',
      });
    }
    const { rowCount } = await this.#pool.query('DELETE FROM tenantry.domain WHERE name = lower($1)', [
      String(name),
    ]);
    this.#onChange();
    if (!rowCount) throw new TenantryError('DOMAIN_NOT_FOUND', { domain: String(name) });
  }
}
