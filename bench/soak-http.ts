/**
 * The soak benchmark's HTTP face, driven from the benchmark's own process against the server
 * child: keep-alive requests to `/v1/internal/users`, `/v1/sql` and `/v1/tables/customer` with
 * the tenant's delegation token, and now and then a password login. Every row is checked.
 */
import http from 'node:http';
import {
  checkRows,
  FaceStats,
  INSERT_NOTE,
  TenantPicker,
  UPDATE_CUSTOMER,
  weighted,
  WrongResult,
  type Row,
  type TrafficPlan,
} from './soak-common.js';
import { CUSTOMERS, SOAK_PASSWORD, TRIM_NOTES, TRIM_USERS, type SoakTenant } from './soak-setup.js';

interface HttpAnswer {
  readonly status: number;
  readonly body: unknown;
}

class HttpError extends Error {
  readonly code: string;
  constructor(status: number, body: unknown) {
    const code = (body as { code?: unknown } | null)?.code;
    super(`HTTP ${status}: ${JSON.stringify(body)}`);
    this.code = `HTTP_${status}${typeof code === 'string' ? `_${code}` : ''}`;
  }
}

function request(
  agent: http.Agent,
  port: number,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: unknown,
): Promise<HttpAnswer> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        agent,
        host: '127.0.0.1',
        port,
        method,
        path,
        headers: payload === undefined ? headers : { ...headers, 'content-type': 'application/json' },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            // not JSON: keep the text
          }
          const answer = { status: res.statusCode ?? 0, body: parsed };
          if (answer.status >= 200 && answer.status < 300) resolve(answer);
          else reject(new HttpError(answer.status, parsed));
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

type HttpOp = 'users' | 'add-user' | 'sql-select' | 'sql-update' | 'sql-insert' | 'table' | 'login';
const HTTP_OPS: readonly (readonly [HttpOp, number])[] = [
  ['users', 20],
  ['add-user', 10],
  ['sql-select', 20],
  ['sql-update', 15],
  ['sql-insert', 10],
  ['table', 20],
  // A password login costs an scrypt hash (~50 ms of CPU) on the server: rare, as in real use.
  ['login', 0.5],
];

async function httpOp(
  agent: http.Agent,
  port: number,
  tenant: SoakTenant,
  stats: FaceStats,
  picker: TenantPicker<SoakTenant>,
  op: HttpOp,
): Promise<void> {
  const name = tenant.name;
  let headers = { authorization: `Bearer ${tenant.token}`, 'x-tenant-id': name };
  const rows = (answer: HttpAnswer, key: 'rows' | undefined): Row[] => {
    const body = answer.body as Row[] | { rows?: Row[] };
    const list = key === undefined ? body : (body as { rows?: Row[] }).rows;
    if (!Array.isArray(list)) throw new WrongResult(`${name}: no rows in ${JSON.stringify(answer.body)}`);
    return list;
  };
  const sql = (text: string, params: unknown[] = []) =>
    request(agent, port, 'POST', '/v1/sql', headers, { sql: text, params });
  const cust = picker.int(1, CUSTOMERS);
  switch (op) {
    case 'login':
    case 'users': {
      if (op === 'login') {
        const login = await request(
          agent,
          port,
          'POST',
          '/v1/auth/login',
          {},
          {
            user: tenant.user,
            password: SOAK_PASSWORD,
          },
        );
        const token = (login.body as { token?: unknown }).token;
        if (typeof token !== 'string') throw new WrongResult(`${name}: login answered no token`);
        headers = { authorization: `Bearer ${token}`, 'x-tenant-id': name };
        stats.count('logins');
      }
      return checkRows(
        stats,
        name,
        rows(await request(agent, port, 'GET', '/v1/internal/users', headers), undefined),
        'name',
        1,
      );
    }
    case 'add-user': {
      const added = await request(agent, port, 'POST', '/v1/internal/users', headers, {
        name: `${name}:${picker.int(0, 1e9)}`,
      });
      checkRows(stats, name, [added.body as Row], 'name', 1);
      if (picker.random() < 0.25) await sql(TRIM_USERS);
      return;
    }
    case 'sql-select':
      return checkRows(
        stats,
        name,
        rows(
          await sql(
            'SELECT tenant_name, cust_num, visits FROM customer WHERE cust_num <= $1 ORDER BY cust_num',
            [cust],
          ),
          'rows',
        ),
        'tenant_name',
        cust,
      );
    case 'sql-update':
      return checkRows(stats, name, rows(await sql(UPDATE_CUSTOMER, [cust]), 'rows'), 'tenant_name', 1);
    case 'sql-insert':
      checkRows(stats, name, rows(await sql(INSERT_NOTE, [name, 'http']), 'rows'), 'tenant_name', 1);
      if (picker.random() < 0.25) await sql(TRIM_NOTES);
      return;
    case 'table':
      return checkRows(
        stats,
        name,
        rows(await request(agent, port, 'GET', '/v1/tables/customer?limit=10', headers), 'rows'),
        'tenant_name',
        CUSTOMERS,
      );
  }
}

/**
 * `rounds` × `concurrency` password logins at once through `POST /v1/auth/login`: each costs an
 * scrypt hash on one of the server's libuv threads, whose malloc arena keeps its ~16 MB
 * afterwards — a one-time plateau of RSS, not growth, so the warm-up reaches it.
 */
export async function primeLogins(
  port: number,
  tenants: readonly SoakTenant[],
  concurrency: number,
  rounds: number,
): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  try {
    for (let round = 0; round < rounds; round++) {
      await Promise.all(
        Array.from({ length: concurrency }, (_, i) => {
          const tenant = tenants[(round * concurrency + i) % tenants.length]!;
          return request(
            agent,
            port,
            'POST',
            '/v1/auth/login',
            {},
            { user: tenant.user, password: SOAK_PASSWORD },
          );
        }),
      );
    }
  } finally {
    agent.destroy();
  }
}

/** Runs the HTTP face over keep-alive connections; answers its statistics. */
export async function httpTraffic(
  port: number,
  tenants: readonly SoakTenant[],
  plan: TrafficPlan,
): Promise<FaceStats> {
  const stats = new FaceStats('http', plan.startMs, plan.warmupMs);
  const deadline = plan.startMs + plan.durationMs;
  const agent = new http.Agent({ keepAlive: true, maxSockets: plan.concurrency });
  try {
    await Promise.all(
      Array.from({ length: plan.concurrency }, async (_, worker) => {
        const picker = new TenantPicker(tenants, 3000 + worker);
        while (Date.now() < deadline) {
          const tenant = picker.next();
          const op = weighted(HTTP_OPS, picker.random());
          await stats.time(op, () => httpOp(agent, port, tenant, stats, picker, op));
        }
      }),
    );
  } finally {
    agent.destroy();
  }
  return stats;
}
