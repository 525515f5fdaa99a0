/**
 * What the egress gateway and curl do together when the mesh tunnels a request: TLS to the external
 * proxy (unverified, like the gateway's UpstreamTlsContext without a validation context), an HTTP/1.1
 * CONNECT to the target, then curl's own TLS to the site through the tunnel (SNI and certificate check
 * as curl does them, against the simulated internet's public CA) and the request. The client closes the
 * tunnel at the end, as the gateway does once curl is done.
 */
import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import type { CurlResult } from './curl-cli.js';

export interface TunnelRequest {
  proxyPort: number;
  /** The CONNECT authority, e.g. `www.google.com:443`. */
  authority: string;
  /** The URL's host: SNI, certificate name and Host header. */
  host: string;
  insecure: boolean;
  publicCa: string;
  timeoutMs: number;
}

export async function tunnelRequest(req: TunnelRequest): Promise<CurlResult> {
  const sockets: tls.TLSSocket[] = [];
  const timer = setTimeout(() => sockets.forEach((s) => s.destroy(new Error('timeout'))), req.timeoutMs);
  try {
    const outer = tls.connect({
      host: '127.0.0.1',
      port: req.proxyPort,
      rejectUnauthorized: false,
      ALPNProtocols: ['http/1.1'],
    });
    sockets.push(outer);
    await new Promise<void>((resolve, reject) => outer.once('secureConnect', resolve).once('error', reject));
    outer.write(`CONNECT ${req.authority} HTTP/1.1\r\nHost: ${req.authority}\r\n\r\n`);
    const head = await readHead(outer);
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0);
    if (status !== 200) {
      // The gateway's tcp_proxy gets no tunnel and resets the client's connection.
      return { exitCode: 35, httpCode: 0, error: 'Recv failure: Connection reset by peer' };
    }
    const inner = tls.connect({
      socket: outer,
      servername: req.host,
      ca: readFileSync(req.publicCa),
      rejectUnauthorized: !req.insecure,
      ALPNProtocols: ['http/1.1'],
    });
    sockets.push(inner);
    try {
      await new Promise<void>((resolve, reject) =>
        inner.once('secureConnect', resolve).once('error', reject),
      );
    } catch (err) {
      const message = (err as Error).message;
      if (/certificate|altname|self.signed|unable to verify/i.test(message)) {
        return { exitCode: 60, httpCode: 0, error: `SSL certificate problem: ${message}` };
      }
      return { exitCode: 35, httpCode: 0, error: `TLS connect error: ${message}` };
    }
    inner.write(`GET / HTTP/1.1\r\nHost: ${req.host}\r\nUser-Agent: curl\r\nAccept: */*\r\n\r\n`);
    const response = await readHead(inner);
    const code = Number(/^HTTP\/1\.[01] (\d{3})/.exec(response)?.[1] ?? 0);
    return code
      ? { exitCode: 0, httpCode: code }
      : { exitCode: 56, httpCode: 0, error: 'Recv failure: no response' };
  } catch (err) {
    const message = (err as Error).message;
    if (message === 'timeout') {
      return { exitCode: 28, httpCode: 0, error: `Operation timed out after ${req.timeoutMs} milliseconds` };
    }
    return { exitCode: 35, httpCode: 0, error: `Recv failure: ${message}` };
  } finally {
    clearTimeout(timer);
    for (const s of sockets.reverse()) s.destroy();
  }
}

/** Reads up to the end of an HTTP head. */
function readHead(socket: tls.TLSSocket): Promise<string> {
  return new Promise((resolve, reject) => {
    let head = '';
    const onData = (chunk: Buffer) => {
      head += chunk.toString('latin1');
      if (head.includes('\r\n\r\n')) {
        socket.off('data', onData);
        resolve(head);
      }
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.once('end', () => resolve(head));
  });
}
