/**
 * The gateway side of the gateway benchmark, run as a child process (`fork`) so that its CPU is
 * its own: a tenantry instance on the benchmark database with its gateway on a free port. The
 * parent drives it over IPC (see gateway-process.ts): statistics, a CPU profile of a window
 * (V8's sampling profiler through node:inspector), stop.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { createTenantry } from '../src/index.js';

/** What the parent passes in the environment variable {@link CONFIG_ENV}, as JSON. */
export interface GatewayServerConfig {
  readonly databaseUrl: string;
  readonly masterKey: string;
}

export const CONFIG_ENV = 'TENANTRY_BENCH_GATEWAY';

/** A request from the parent. */
export interface Request {
  readonly id: number;
  readonly op: 'stats' | 'profile-start' | 'profile-stop' | 'stop';
  /** profile-stop: where to write the .cpuprofile. */
  readonly file?: string;
}

function post<T>(session: Session, method: string, params?: object): Promise<T> {
  return new Promise((resolve, reject) =>
    session.post(method, params ?? {}, (error, result) => (error ? reject(error) : resolve(result as T))),
  );
}

async function serve(send: (message: unknown) => void): Promise<void> {
  const config = JSON.parse(process.env[CONFIG_ENV] ?? '{}') as GatewayServerConfig;
  const tenantry = await createTenantry({ databaseUrl: config.databaseUrl, masterKey: config.masterKey });
  const gateway = await tenantry.startGateway({ port: 0 });
  let session: Session | undefined;
  const handle = async (request: Request): Promise<unknown> => {
    switch (request.op) {
      case 'stats':
        return { gateway: gateway.stats(), pools: tenantry.poolStats() };
      case 'profile-start':
        session = new Session();
        session.connect();
        await post(session, 'Profiler.enable');
        await post(session, 'Profiler.setSamplingInterval', { interval: 250 });
        await post(session, 'Profiler.start');
        return null;
      case 'profile-stop': {
        if (!session || !request.file) throw new Error('no profile running');
        const { profile } = await post<{ profile: unknown }>(session, 'Profiler.stop');
        writeFileSync(request.file, JSON.stringify(profile));
        session.disconnect();
        session = undefined;
        return null;
      }
      case 'stop':
        await gateway.close(2_000);
        await tenantry.close();
        setImmediate(() => process.exit(0));
        return null;
    }
  };
  process.on('message', (message: Request) => {
    handle(message).then(
      (result) => send({ id: message.id, result }),
      (error: unknown) => send({ id: message.id, error: String(error) }),
    );
  });
  send({ ready: true, port: gateway.port, pid: process.pid });
}

const send = process.send?.bind(process);
if (send) {
  process.on('disconnect', () => process.exit(0)); // the parent is gone
  serve((message) => send(message)).catch((error: unknown) => {
    send({ ready: false, error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
    setImmediate(() => process.exit(1));
  });
}
