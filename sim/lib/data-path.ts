/**
 * The local lab's data path: what a pod's curl gets once istiod's config (walked by `istio-oracle xds`)
 * has decided where its connection goes. The lab's machines then answer as on the simulated lab: the
 * external proxy carries a CONNECT it can serve (HTTP/1.1 over TLS on its port), the external app answers
 * at its address, public hosts answer 200, and anything refused inside the mesh is reset.
 */
import type { MeshVerdict } from '../../src/mesh/verdict.js';
import { publicAddress } from '../mesh/model.js';
import { visitProxy, type ProxyFiles, type ProxyListener, type TunnelAsk } from '../mesh/proxy-listeners.js';
import type { LabApp } from '../mesh/types.js';
import type { CurlCall } from './curl-cli.js';
import type { PodRequestOutcome } from './pod-curl.js';

export interface DataPathInput {
  verdict: MeshVerdict;
  call: CurlCall;
  lab: {
    /** Pod traffic leaving the node is masqueraded to the node's address. */
    nodeIp: string;
    proxy?: { ip: string; listeners: ProxyListener[]; files?: ProxyFiles };
    app?: LabApp;
  };
  /** What the client's DNS answered for the host. */
  remoteIp?: string;
  now: Date;
  /** The source port the node picks for a tunnel to the proxy. */
  sourcePort: number;
}

const RESET = { exitCode: 35, httpCode: 0, error: 'Recv failure: Connection reset by peer' };

function splitHostPort(target: string): [string, number | undefined] {
  const at = target.lastIndexOf(':');
  return at === -1 ? [target, undefined] : [target.slice(0, at), Number(target.slice(at + 1))];
}

function isIp(value: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(value);
}

function isPrivate(ip: string): boolean {
  return /^(10\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.|127\.)/.test(ip);
}

/** Where the decided path ends, and what curl and the lab's machines see of it. */
export function outcomeOf(input: DataPathInput): PodRequestOutcome {
  const { verdict, call, lab } = input;
  const trace = [...verdict.path];
  const base = { remoteIp: input.remoteIp, proxyLogLines: [] as string[], trace };
  const reset = (why: string): PodRequestOutcome => {
    trace.push(why);
    return { ...base, ...RESET };
  };
  const host = call.url.hostname;
  const defaultPort = call.url.protocol === 'https:' ? 443 : 80;
  // Who answers at an address the connection reaches.
  const reach = (target: string, via: 'direct' | 'tunnel', extra: Partial<PodRequestOutcome> = {}) => {
    const [name, port = defaultPort] = splitHostPort(target);
    const ip = isIp(name) ? name : publicAddress(name);
    if (lab.app && ip === lab.app.ip && (port === lab.app.port || port === lab.app.httpPort)) {
      const server: 'tls' | 'http' = port === lab.app.port ? 'tls' : 'http';
      trace.push(
        `server: the lab's app at ${ip}:${port} (${server === 'tls' ? 'mutual TLS' : 'plain HTTP'}, ${via})`,
      );
      return {
        ...base,
        ...extra,
        exitCode: 0,
        httpCode: 0,
        appRequest: { host, port: Number(call.url.port || defaultPort), server },
      };
    }
    if (!ip) {
      trace.push(`server: ${name} does not resolve`);
      return { ...base, ...extra, exitCode: 6, httpCode: 0, error: `Could not resolve host: ${name}` };
    }
    if (isPrivate(ip)) {
      trace.push(`server: nothing answers at ${ip}:${port}`);
      return {
        ...base,
        ...extra,
        exitCode: 28,
        httpCode: 0,
        error: 'Connection timed out after 10000 milliseconds',
      };
    }
    trace.push(`server: ${name} (${ip}:${port}) answers 200 (${via})`);
    return { ...base, ...extra, exitCode: 0, httpCode: 200 };
  };
  switch (verdict.verdict) {
    case 'blocked':
      return reset(
        `${verdict.exit ?? 'sidecar'}: ${verdict.reason ?? 'BlackHoleCluster'}; the connection is reset`,
      );
    case 'fail':
      return reset(verdict.reason ?? 'the mesh fails the connection');
    case 'direct':
      return reach(verdict.upstream ?? `${input.remoteIp ?? host}:${call.url.port || defaultPort}`, 'direct');
    case 'tunnel': {
      const proxy = lab.proxy;
      const [proxyIp, proxyPort] = splitHostPort(verdict.proxy ?? '?');
      if (!proxy || proxyIp !== proxy.ip) {
        return reset(
          `tunnel: ${verdict.proxy ?? '?'} is not the lab's proxy${proxy ? ` (${proxy.ip})` : ''}; the upstream connection fails`,
        );
      }
      const ask: TunnelAsk = {
        port: proxyPort ?? 0,
        tls: !!verdict.proxyTls,
        protocol: verdict.protocol ?? 'HTTP/1.1',
        method: verdict.method ?? 'CONNECT',
        ...(verdict.proxyAuthorization ? { authorization: verdict.proxyAuthorization } : {}),
      };
      const authority = verdict.authority ?? `${host}:443`;
      const tunnelRequest = { ...ask, authority };
      const visit = visitProxy(
        proxy.listeners,
        ask,
        authority,
        { time: input.now, client: `${lab.nodeIp}:${input.sourcePort}` },
        proxy.files,
      );
      if (!visit.served) {
        return { ...reset(`tunnel: ${visit.why}`), proxyLogLines: visit.lines, tunnelRequest };
      }
      trace.push(`tunnel: ${visit.note} through ${proxy.ip}`);
      return reach(authority, 'tunnel', { proxyLogLines: visit.lines, tunnelRequest });
    }
  }
}
