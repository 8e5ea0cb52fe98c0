import pg from 'pg';
import { expect } from 'vitest';
import { seedDemo } from '../../src/demo/index.js';
import {
  audit,
  createTenantry,
  generateMasterKey,
  type AuditReport,
  type CatalogRoles,
  type Finding,
} from '../../src/index.js';
import { createTestDatabase, serverUrl, urlFor, withClient } from '../helpers/db.js';

/** A demo database to copy: tenantry installed, seed 004's demo, a schema tenant, tenant login roles. */
export interface AuditTemplate {
  readonly url: string;
  readonly name: string;
  readonly roles: CatalogRoles;
  /** Login role, uuid and id of HomeDepot, Lowes and (when it could be provisioned) the schema tenant Acme. */
  readonly tenants: Readonly<
    Record<string, { role: string; uuid: string; id: number; schema: string | null }>
  >;
}

/** Builds the template once per test file (its roles are named after it, so files do not collide). */
export async function auditTemplate(label: string): Promise<AuditTemplate> {
  const url = await createTestDatabase(label);
  const tenantry = await createTenantry({ databaseUrl: url, masterKey: generateMasterKey() });
  try {
    await seedDemo(tenantry);
    const names = ['HomeDepot', 'Lowes'];
    // a schema tenant, when this build can provision one
    const acme = await tenantry.tenants.create({ name: 'Acme', isolation: 'schema' }).catch(() => undefined);
    if (acme) names.push('Acme');
    const tenants: Record<string, { role: string; uuid: string; id: number; schema: string | null }> = {};
    for (const name of names) {
      const t = await tenantry.prepareLoginRole(name);
      tenants[name] = { role: t.role!, uuid: t.uuid, id: t.id, schema: t.schemaName };
    }
    await tenantry.tenants.ensurePermissionRole('HomeDepot', 'read');
    return { url, name: new URL(url).pathname.slice(1), roles: tenantry.roles, tenants };
  } finally {
    await tenantry.close();
  }
}

/** A fresh copy of the template (`CREATE DATABASE … TEMPLATE`), for one planted hazard. */
export async function cloneOf(template: AuditTemplate, label: string): Promise<string> {
  const name = `${template.name}_${label}`.slice(0, 63);
  await withClient(serverUrl(), async (client) => {
    for (let attempt = 0; ; attempt++) {
      try {
        await client.query(
          `CREATE DATABASE ${pg.escapeIdentifier(name)} TEMPLATE ${pg.escapeIdentifier(template.name)}`,
        );
        return;
      } catch (error) {
        // the template's last connections may still be closing
        if ((error as { code?: string }).code !== '55006' || attempt > 50) throw error;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  });
  return urlFor(serverUrl(), name);
}

/** Runs SQL as the superuser on `url`. */
export function sql(url: string, text: string): Promise<unknown> {
  return withClient(url, (client) => client.query(text));
}

/** The findings of `check` in an audit of `url`. */
export async function findings(url: string, check?: string): Promise<Finding[]> {
  const report: AuditReport = await audit(url);
  return check === undefined ? [...report.findings] : report.findings.filter((f) => f.check === check);
}

/**
 * Plants a hazard in its own copy of the template, expects the audit to report it with
 * `severity` on an object matching `object`, applies `fix`, and expects the finding gone.
 */
export async function plantAndFix(
  template: AuditTemplate,
  spec: {
    readonly label: string;
    readonly check: string;
    readonly severity: Finding['severity'];
    readonly object: RegExp;
    readonly plant: (url: string) => Promise<unknown>;
    readonly fix: (url: string) => Promise<unknown>;
  },
): Promise<void> {
  const url = await cloneOf(template, spec.label);
  expect(await findings(url, spec.check), 'before planting').toEqual([]);
  await spec.plant(url);
  const found = await findings(url, spec.check);
  expect(
    found.map((f) => [f.severity, f.object]),
    spec.check,
  ).toContainEqual([spec.severity, expect.stringMatching(spec.object)]);
  expect(found.every((f) => f.fix.length > 0 && f.message.length > 0)).toBe(true);
  await spec.fix(url);
  expect(await findings(url, spec.check), 'after the fix').toEqual([]);
}
