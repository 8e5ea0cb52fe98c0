/**
 * The soak benchmark's gateway face, driven from the benchmark's own process against the server
 * child: pg clients logging in as random tenants' users (SCRAM, or a delegation token as
 * password for three in ten), running 20–200 operations each — named prepared statements,
 * simple and extended queries, small transactions — then disconnecting. Every row is checked.
 */
import pg from 'pg';
import {
  checkRows,
  FaceStats,
  INSERT_NOTE,
  TenantPicker,
  UPDATE_CUSTOMER,
  weighted,
  type Row,
  type TrafficPlan,
} from './soak-common.js';
import { CUSTOMERS, SOAK_PASSWORD, TRIM_NOTES, type SoakTenant } from './soak-setup.js';

type GatewayOp = 'point' | 'list' | 'notes' | 'insert' | 'update' | 'transaction';
const GATEWAY_OPS: readonly (readonly [GatewayOp, number])[] = [
  ['point', 30],
  ['list', 10],
  ['notes', 15],
  ['insert', 15],
  ['update', 15],
  ['transaction', 15],
];

async function gatewayOp(
  client: pg.Client,
  tenant: string,
  stats: FaceStats,
  picker: TenantPicker<SoakTenant>,
  op: GatewayOp,
): Promise<void> {
  const cust = picker.int(1, CUSTOMERS);
  const check = (rows: Row[], atLeast = 0) => checkRows(stats, tenant, rows, 'tenant_name', atLeast);
  switch (op) {
    case 'point': // a named prepared statement (Parse once per client, Bind/Execute after)
      return check(
        (
          await client.query<Row>({
            name: 'soak_point',
            text: 'SELECT tenant_name, visits FROM customer WHERE cust_num = $1',
            values: [cust],
          })
        ).rows,
        1,
      );
    case 'list': // the simple protocol
      return check(
        (await client.query<Row>('SELECT tenant_name, name FROM customer ORDER BY cust_num')).rows,
        CUSTOMERS,
      );
    case 'notes':
      return check(
        (
          await client.query<Row>({
            name: 'soak_notes',
            text: 'SELECT tenant_name, body FROM note ORDER BY created_at DESC LIMIT $1',
            values: [10],
          })
        ).rows,
      );
    case 'insert':
      check(
        (await client.query<Row>({ name: 'soak_insert', text: INSERT_NOTE, values: [tenant, 'gateway'] }))
          .rows,
        1,
      );
      await client.query(TRIM_NOTES);
      return;
    case 'update': // the extended protocol, unnamed statement
      return check((await client.query<Row>(UPDATE_CUSTOMER, [cust])).rows, 1);
    case 'transaction':
      await client.query('BEGIN');
      try {
        check((await client.query<Row>(UPDATE_CUSTOMER, [cust])).rows, 1);
        check(
          (await client.query<Row>({ name: 'soak_insert', text: INSERT_NOTE, values: [tenant, 'gw tx'] }))
            .rows,
          1,
        );
        check(
          (await client.query<Row>('SELECT tenant_name FROM note ORDER BY created_at DESC LIMIT 5')).rows,
          1,
        );
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      }
      await client.query(TRIM_NOTES);
      return;
  }
}

/** Runs the gateway face; answers its statistics. */
export async function gatewayTraffic(
  port: number,
  tenants: readonly SoakTenant[],
  plan: TrafficPlan,
): Promise<FaceStats> {
  const stats = new FaceStats('gateway', plan.startMs, plan.warmupMs);
  const deadline = plan.startMs + plan.durationMs;
  await Promise.all(
    Array.from({ length: plan.concurrency }, async (_, worker) => {
      const picker = new TenantPicker(tenants, 2000 + worker);
      while (Date.now() < deadline) {
        const tenant = picker.next();
        const byToken = picker.random() < 0.3;
        const client = new pg.Client({
          host: '127.0.0.1',
          port,
          database: 'tenantry',
          user: byToken ? `${tenant.user}+token` : tenant.user,
          password: byToken ? tenant.token : SOAK_PASSWORD,
          application_name: 'soak',
        });
        let broken = false;
        client.on('error', () => void (broken = true));
        try {
          await client.connect();
          stats.count(byToken ? 'token_logins' : 'scram_logins');
        } catch (error) {
          stats.fail(error);
          await client.end().catch(() => undefined);
          continue;
        }
        const n = picker.int(20, 200);
        for (let i = 0; i < n && !broken && Date.now() < deadline; i++) {
          const op = weighted(GATEWAY_OPS, picker.random());
          await stats.time(op, () => gatewayOp(client, tenant.name, stats, picker, op));
        }
        await client.end().catch(() => undefined);
      }
    }),
  );
  return stats;
}
