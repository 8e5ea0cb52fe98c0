import pg from 'pg';
import type { Queryable } from './fleet-store.js';

/** A view tenantry builds itself (a tenant-facing view, a tenant's view with extra columns). */
export interface ViewBuild {
  readonly schema: string;
  readonly name: string;
  /** SQL that creates or replaces it, e.g. `SELECT tenantry.create_facing_view(…)`. */
  readonly sql: string;
  readonly values?: readonly unknown[];
}

/** A view saved before its sources were dropped, to be created again after. */
interface SavedView {
  readonly oid: number;
  readonly schema: string;
  readonly name: string;
  readonly kind: 'v' | 'm';
  readonly def: string;
  readonly options: string[] | null;
  readonly owner: string;
  readonly grants: { grantee: string; privilege: string }[];
  readonly columns: string[];
  readonly sources: number[];
}

/** Views taken down (with everything built on them) so their sources can change. */
export interface Detached {
  readonly views: readonly SavedView[];
  /** Name and columns of every relation involved, by oid, as they were (for `SELECT *` views). */
  readonly relations: ReadonlyMap<number, { readonly name: string; readonly columns: readonly string[] }>;
}

const q = pg.escapeIdentifier;
const REBUILD_CODES = new Set(['42P16', '2BP01', '0A000']);

/** Whether a failed view replacement (or DDL under a view) needs the views dropped and rebuilt. */
export function needsRebuild(error: unknown): boolean {
  return error instanceof pg.DatabaseError && REBUILD_CODES.has(error.code ?? '');
}

/** Every view built (directly or not) on the relations `roots` (and the roots that are views, with `withRoots`), parents first. */
async function dependents(db: Queryable, roots: readonly number[], withRoots = false): Promise<SavedView[]> {
  if (roots.length === 0) return [];
  const { rows } = await db.query<SavedView & { level: number }>(
    `WITH RECURSIVE dep(oid, level) AS (
       SELECT r, 0 FROM unnest($1::oid[]) r WHERE $2
       UNION
       SELECT rw.ev_class, 1 FROM pg_depend d JOIN pg_rewrite rw ON rw.oid = d.objid
       WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass
         AND d.refobjid = ANY($1::oid[]) AND rw.ev_class <> ALL($1::oid[])
       UNION
       SELECT rw.ev_class, dep.level + 1 FROM dep
       JOIN pg_depend d ON d.refobjid = dep.oid AND d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass
       JOIN pg_rewrite rw ON rw.oid = d.objid AND rw.ev_class <> dep.oid
       WHERE dep.level < 20)
     SELECT c.oid::int AS oid, n.nspname AS schema, c.relname AS name, c.relkind AS kind, max(dep.level) AS level,
            pg_get_viewdef(c.oid) AS def, c.reloptions AS options, pg_get_userbyid(c.relowner) AS owner,
            coalesce((SELECT json_agg(json_build_object('grantee', pg_get_userbyid(a.grantee), 'privilege', a.privilege_type))
                      FROM aclexplode(c.relacl) a WHERE a.grantee <> 0 AND a.grantee <> c.relowner), '[]') AS grants,
            ARRAY(SELECT a.attname::text FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                  ORDER BY a.attnum) AS columns,
            ARRAY(SELECT DISTINCT d.refobjid::int FROM pg_rewrite rw JOIN pg_depend d ON d.objid = rw.oid
                  WHERE rw.ev_class = c.oid AND d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass
                    AND d.refobjid <> c.oid) AS sources
     FROM dep JOIN pg_class c ON c.oid = dep.oid JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('v', 'm')
     GROUP BY c.oid, n.nspname ORDER BY max(dep.level), c.oid`,
    [[...roots], withRoots],
  );
  return rows;
}

async function relationsOf(
  db: Queryable,
  oids: readonly number[],
): Promise<Map<number, { name: string; columns: string[] }>> {
  const { rows } = await db.query<{ oid: number; name: string; columns: string[] }>(
    `SELECT c.oid::int AS oid, c.oid::regclass::text AS name, ARRAY(SELECT a.attname::text FROM pg_attribute a
              WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum) AS columns
     FROM pg_class c WHERE c.oid = ANY($1::oid[])`,
    [[...oids]],
  );
  return new Map(rows.map((r) => [r.oid, { name: r.name, columns: r.columns }]));
}

/**
 * Saves every view built on `roots` and drops them (with `dropRoots`, the roots themselves,
 * which must be views). Run with search_path = pg_catalog so the saved definitions name every
 * relation with its schema.
 */
export async function detachViews(
  db: Queryable,
  roots: readonly number[],
  dropRoots: boolean,
): Promise<Detached> {
  const views = await dependents(db, roots);
  const relations = await relationsOf(db, [...roots, ...views.map((v) => v.oid)]);
  const drop = dropRoots
    ? roots
    : views.filter((v) => v.sources.some((s) => roots.includes(s))).map((v) => v.oid);
  if (drop.length > 0) {
    const { rows } = await db.query<{ kind: string; name: string }>(
      `SELECT c.relkind AS kind, c.oid::regclass::text AS name FROM pg_class c WHERE c.oid = ANY($1::oid[])`,
      [[...drop]],
    );
    for (const row of rows)
      await db.query(`DROP ${row.kind === 'm' ? 'MATERIALIZED VIEW' : 'VIEW'} IF EXISTS ${row.name} CASCADE`);
  }
  return { views, relations };
}

const ITEM = /^(?:(?:"(?:[^"]|"")+"|[^".\s]+)\.)?("(?:[^"]|"")+"|[^".\s]+)$/;

/** A select-list item's column name, when the item is a plain (possibly qualified) column. */
function plainColumn(item: string): string | undefined {
  const name = ITEM.exec(item.trim())?.[1];
  if (name === undefined) return undefined;
  return name.startsWith('"') ? name.slice(1, -1).replace(/""/g, '"') : name;
}

/**
 * The definition of `view` with its select list widened to `after`, when the view was a
 * `SELECT *` of its one source (its columns were all of the source's columns `before`, in order,
 * selected plainly); otherwise its own definition.
 */
function widened(view: SavedView, before?: readonly string[], after?: readonly string[]): string {
  if (view.sources.length !== 1 || !before || !after) return view.def;
  if (before.join('\0') !== view.columns.join('\0') || before.join('\0') === after.join('\0'))
    return view.def;
  const match = /^\s*SELECT\s+([\s\S]*?)(\n\s+FROM\s[\s\S]*)$/.exec(view.def);
  if (!match?.[1] || !match[2]) return view.def;
  const items = match[1].split(/,\s*\n\s*/).map(plainColumn);
  if (items.length !== before.length || items.some((item, i) => item !== before[i])) return view.def;
  return ` SELECT ${after.map((c) => q(c)).join(', ')}${match[2]}`;
}

async function createSaved(db: Queryable, view: SavedView, def: string, replace: boolean): Promise<void> {
  const name = `${q(view.schema)}.${q(view.name)}`;
  const options = view.options?.length ? ` WITH (${view.options.join(', ')})` : '';
  const body = def.trim().replace(/;$/, '');
  if (view.kind === 'm') {
    // never filled as the operator (a superuser bypasses row-level security): the tenant refreshes it
    await db.query(`CREATE MATERIALIZED VIEW ${name}${options} AS ${body} WITH NO DATA`);
  } else {
    await db.query(`CREATE ${replace ? 'OR REPLACE ' : ''}VIEW ${name}${options} AS ${body}`);
  }
  if (replace) return;
  await db.query(
    `ALTER ${view.kind === 'm' ? 'MATERIALIZED VIEW' : 'VIEW'} ${name} OWNER TO ${q(view.owner)}`,
  );
  for (const grant of view.grants) {
    await db.query(`GRANT ${grant.privilege} ON ${name} TO ${q(grant.grantee)}`);
  }
}

/** Runs `builds`, then creates the saved views again, `SELECT *` views widened to the new columns. */
export async function restoreViews(
  db: Queryable,
  detached: Detached,
  builds: readonly ViewBuild[],
): Promise<void> {
  await db.query("SELECT set_config('tenantry.provisioning', 'on', true)");
  for (const build of builds) await db.query(build.sql, build.values === undefined ? [] : [...build.values]);
  const columnsNow = async (source: number): Promise<string[] | undefined> => {
    const name = detached.relations.get(source)?.name;
    if (name === undefined) return undefined;
    const { rows } = await db.query<{ oid: number | null }>('SELECT to_regclass($1)::oid::int AS oid', [
      name,
    ]);
    const oid = rows[0]?.oid;
    return oid === null || oid === undefined ? undefined : (await relationsOf(db, [oid])).get(oid)?.columns;
  };
  for (const view of detached.views) {
    const name = `${q(view.schema)}.${q(view.name)}`;
    const found = await db.query<{ oid: number | null }>('SELECT to_regclass($1)::oid::int AS oid', [name]);
    if (found.rows[0]?.oid !== null && found.rows[0]?.oid !== undefined) {
      // rebuilt by a build: it keeps the privileges it had (a builder may grant fewer)
      for (const grant of view.grants)
        await db.query(`GRANT ${grant.privilege} ON ${name} TO ${q(grant.grantee)}`);
      continue;
    }
    const source = view.sources[0] ?? 0;
    const def = widened(view, detached.relations.get(source)?.columns, await columnsNow(source));
    await createSaved(db, view, def, false);
  }
}

/**
 * Re-creates tenantry's own views with `builds`, keeping every view built on them: replaced in
 * place when PostgreSQL allows it (new columns at the end), `SELECT *` views on them widened;
 * otherwise dropped, rebuilt and the saved views created again.
 */
export async function refreshViews(db: Queryable, builds: readonly ViewBuild[]): Promise<void> {
  if (builds.length === 0) return;
  const { rows } = await db.query<{ oid: number }>(
    'SELECT to_regclass(n)::oid::int AS oid FROM unnest($1::text[]) n WHERE to_regclass(n) IS NOT NULL',
    [builds.map((b) => `${q(b.schema)}.${q(b.name)}`)],
  );
  const primaries = rows.map((r) => r.oid);
  const views = await dependents(db, primaries, true);
  const detached: Detached = {
    views,
    relations: await relationsOf(db, [...primaries, ...views.map((v) => v.oid)]),
  };
  await db.query('SAVEPOINT tenantry_views');
  try {
    await db.query("SELECT set_config('tenantry.provisioning', 'on', true)");
    for (const build of builds)
      await db.query(build.sql, build.values === undefined ? [] : [...build.values]);
    const now = await relationsOf(db, primaries);
    for (const view of views) {
      const source = view.sources[0] ?? 0;
      const def = widened(view, detached.relations.get(source)?.columns, now.get(source)?.columns);
      if (def !== view.def) await createSaved(db, view, def, true);
    }
    await db.query('RELEASE SAVEPOINT tenantry_views');
  } catch (error) {
    if (!needsRebuild(error)) throw error;
    await db.query('ROLLBACK TO SAVEPOINT tenantry_views');
    await detachViews(db, primaries, true);
    await restoreViews(db, detached, builds);
  }
}
