/**
 * Choosing the TCP port for the embedded server: the preferred one when it is free on
 * 127.0.0.1, otherwise one the operating system hands out (`listen(0)`). The port is chosen at
 * every start, so a reused cluster takes whatever is free then.
 */
import net from 'node:net';

/** The address the embedded server listens on; nothing else is exposed. */
export const loopback = '127.0.0.1';

/** Whether `port` can be bound on 127.0.0.1 right now. */
export function isPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once('error', () => resolve(false));
    probe.listen({ port, host: loopback, exclusive: true }, () => {
      probe.close(() => resolve(true));
    });
  });
}

/** A port the operating system reports free on 127.0.0.1 (by listening on port 0). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen({ port: 0, host: loopback, exclusive: true }, () => {
      const address = probe.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      probe.close(() => (port > 0 ? resolve(port) : reject(new Error('the OS reported no port'))));
    });
  });
}

/** `preferred` when free, otherwise (or when it is 0) a free port from the operating system. */
export async function choosePort(preferred: number): Promise<number> {
  return preferred !== 0 && (await isPortFree(preferred)) ? preferred : freePort();
}

/** Whether server output says the port could not be bound (someone took it meanwhile). */
export function saysPortTaken(output: string): boolean {
  return /could not bind IPv4 address|Address already in use|could not create any TCP\/IP sockets/i.test(
    output,
  );
}
