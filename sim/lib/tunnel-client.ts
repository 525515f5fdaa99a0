/**
 * What the egress gateway (or the sidecar) and curl do together when the mesh tunnels a request: a
 * connection to the external proxy, over TLS (unverified, like an UpstreamTlsContext without a validation
 * context) or in plain text; a CONNECT (or POST) to the target over HTTP/1.1 or HTTP/2; then curl's own
 * TLS to the site through the tunnel (SNI and certificate check as curl does them, against the simulated
 * internet's public CA) and the request. The client closes the tunnel at the end, as the proxy's client
 * does once curl is done.
 */
import { readFileSync } from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import type { CurlResult } from './curl-cli.js';

export interface TunnelRequest {
  proxyPort: number;
  /** TLS to the proxy (the proof of concept's), or plain text. */
  proxyTls?: boolean;
  /** `HTTP/1.1` (the default) or `HTTP/2`. */
  protocol?: string;
  /** `CONNECT` (the default) or `POST`. */
  method?: string;
  /** The Proxy-Authorization header's value (`Basic …`), for a proxy that asks for a credential. */
  proxyAuthorization?: string;
  /**
   * What goes through the tunnel is the sidecar's Istio mTLS, not curl's TLS: a handshake offering Istio's
   * ALPN and trusting only the mesh's root, which a public server's certificate never chains to. The
   * sidecar then resets curl's connection.
   */
  istioMutualInside?: boolean;
  /** The CONNECT authority, e.g. `www.google.com:443`. */
  authority: string;
  /** The URL's host: SNI, certificate name and Host header. */
  host: string;
  insecure: boolean;
  publicCa: string;
  timeoutMs: number;
}

/** What curl reports when the proxy's client gets no tunnel and resets the connection. */
export const RESET: CurlResult = {
  exitCode: 35,
  httpCode: 0,
  error: 'Recv failure: Connection reset by peer',
};

export async function tunnelRequest(req: TunnelRequest): Promise<CurlResult> {
  const closers: (() => void)[] = [];
  const timer = setTimeout(() => closers.forEach((close) => close()), req.timeoutMs);
  let timedOut = false;
  closers.push(() => (timedOut = true));
  try {
    const tunnel = req.protocol === 'HTTP/2' ? await openHttp2(req, closers) : await openHttp1(req, closers);
    // The proxy's client gets no tunnel and resets the client's connection.
    if (!tunnel) return RESET;
    if (req.istioMutualInside) return await istioHandshake(tunnel, req.host, closers);
    const inner = tls.connect({
      socket: tunnel,
      servername: req.host,
      ca: readFileSync(req.publicCa),
      rejectUnauthorized: !req.insecure,
      ALPNProtocols: ['http/1.1'],
    });
    closers.push(() => inner.destroy(new Error('timeout')));
    try {
      await new Promise<void>((resolve, reject) =>
        inner.once('secureConnect', resolve).once('error', reject),
      );
    } catch (err) {
      const message = (err as Error).message;
      if (/certificate|altname|self.signed|unable to verify/i.test(message)) {
        return { exitCode: 60, httpCode: 0, error: `SSL certificate problem: ${message}` };
      }
      throw err;
    }
    inner.write(`GET / HTTP/1.1\r\nHost: ${req.host}\r\nUser-Agent: curl\r\nAccept: */*\r\n\r\n`);
    const response = await readHead(inner);
    const code = Number(/^HTTP\/1\.[01] (\d{3})/.exec(response)?.[1] ?? 0);
    return code
      ? { exitCode: 0, httpCode: code }
      : { exitCode: 56, httpCode: 0, error: 'Recv failure: no response' };
  } catch (err) {
    if (timedOut) {
      return { exitCode: 28, httpCode: 0, error: `Operation timed out after ${req.timeoutMs} milliseconds` };
    }
    return { ...RESET, error: `Recv failure: ${(err as Error).message}` };
  } finally {
    clearTimeout(timer);
    for (const close of closers.reverse()) close();
  }
}

/**
 * The sidecar's side of Istio mTLS to a server that is not a mesh workload: the handshake fails (no
 * certificate of the server chains to the mesh's root, here none at all), and the sidecar resets curl.
 */
async function istioHandshake(tunnel: Duplex, host: string, closers: (() => void)[]): Promise<CurlResult> {
  const wrapped = tls.connect({
    socket: tunnel,
    servername: host,
    ALPNProtocols: ['istio-peer-exchange', 'istio'],
    ca: [],
    rejectUnauthorized: true,
  });
  closers.push(() => wrapped.destroy());
  const failure = await new Promise<string | undefined>((resolve) =>
    wrapped
      .once('secureConnect', () => resolve(undefined))
      .once('error', (err: Error) => resolve(err.message)),
  );
  return failure === undefined
    ? { exitCode: 0, httpCode: 0 }
    : {
        ...RESET,
        error: `Recv failure: Connection reset by peer (the sidecar's mTLS handshake: ${failure})`,
      };
}

/** HTTP/1.1: the request line and head on the connection, which then carries the tunnel. */
async function openHttp1(req: TunnelRequest, closers: (() => void)[]): Promise<Duplex | undefined> {
  const socket: net.Socket = req.proxyTls
    ? tls.connect({
        host: '127.0.0.1',
        port: req.proxyPort,
        rejectUnauthorized: false,
        ALPNProtocols: ['http/1.1'],
      })
    : net.connect({ host: '127.0.0.1', port: req.proxyPort });
  closers.push(() => socket.destroy());
  await new Promise<void>((resolve, reject) =>
    socket.once(req.proxyTls ? 'secureConnect' : 'connect', resolve).once('error', reject),
  );
  const auth = req.proxyAuthorization ? `Proxy-Authorization: ${req.proxyAuthorization}\r\n` : '';
  socket.write(
    req.method === 'POST'
      ? `POST / HTTP/1.1\r\nHost: ${req.authority}\r\n${auth}Transfer-Encoding: chunked\r\n\r\n`
      : `CONNECT ${req.authority} HTTP/1.1\r\nHost: ${req.authority}\r\n${auth}\r\n`,
  );
  const head = await readHead(socket);
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0);
  return status === 200 ? socket : undefined;
}

/** HTTP/2: one stream (ALPN h2 over TLS, prior knowledge in plain text) that carries the tunnel. */
async function openHttp2(req: TunnelRequest, closers: (() => void)[]): Promise<Duplex | undefined> {
  const session = http2.connect(`${req.proxyTls ? 'https' : 'http'}://127.0.0.1:${req.proxyPort}`, {
    rejectUnauthorized: false,
  });
  closers.push(() => session.destroy());
  session.on('error', () => undefined);
  await new Promise<void>((resolve, reject) =>
    session.once('connect', () => resolve()).once('error', reject),
  );
  const auth = req.proxyAuthorization ? { 'proxy-authorization': req.proxyAuthorization } : {};
  const stream = session.request(
    req.method === 'POST'
      ? {
          ':method': 'POST',
          ':path': '/',
          ':scheme': req.proxyTls ? 'https' : 'http',
          ':authority': req.authority,
          ...auth,
        }
      : { ':method': 'CONNECT', ':authority': req.authority, ...auth },
    { endStream: false },
  );
  closers.push(() => stream.destroy());
  const headers = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) =>
    stream
      .once('response', resolve)
      .once('error', reject)
      .once('close', () => reject(new Error('stream closed'))),
  );
  return Number(headers[':status']) === 200 ? stream : undefined;
}

/** Reads up to the end of an HTTP head. */
function readHead(socket: Duplex): Promise<string> {
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
