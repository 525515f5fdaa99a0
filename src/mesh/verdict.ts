/**
 * Where a TLS connection from the client pod goes, in one shape for every engine that answers it: the
 * Istio oracle (istiod's config generator and Envoy's rules, `tools/istio-oracle`) and the simulated
 * lab's model (`sim/mesh/model.ts`). The differential tests compare the two field by field.
 */
import { createHash } from 'node:crypto';

export type VerdictKind =
  /** The sidecar's outbound policy refuses it (REGISTRY_ONLY, BlackHoleCluster). */
  | 'blocked'
  /** It leaves the mesh towards the host itself; the external proxy sees nothing. */
  | 'direct'
  /** An HTTP CONNECT (or POST) tunnel through a proxy carries it. */
  | 'tunnel'
  /** It fails on the way (no listener or filter chain, a rejected config, a missing cluster). */
  | 'fail';

export interface MeshVerdict {
  host: string;
  port: number;
  verdict: VerdictKind;
  /** The proxy it leaves the mesh from. */
  exit?: 'sidecar' | 'gateway';
  /** For tunnels: the proxy's `ip:port`, the tunnel's authority, method and HTTP version, TLS to the proxy. */
  proxy?: string;
  authority?: string;
  method?: string;
  protocol?: string;
  proxyTls?: boolean;
  /**
   * The Proxy-Authorization header the tunnel sends (headers_to_add of its tunneling_config). A credential:
   * verdict keys and descriptions show only its fingerprint (`proxyAuthFingerprint`).
   */
  proxyAuthorization?: string;
  /** For direct connections: where to. */
  upstream?: string;
  reason?: string;
  /** The decisions on the way, one line each. */
  path: string[];
}

/** The fields that must agree between engines; `reason` and `path` are explanations, not verdicts. */
export function verdictKey(v: MeshVerdict): string {
  const parts: string[] = [v.verdict];
  if (v.verdict === 'tunnel') {
    parts.push(
      `via ${v.proxy ?? '?'}`,
      `${v.method ?? 'CONNECT'} ${v.authority ?? '?'}`,
      v.protocol ?? 'HTTP/1.1',
      v.proxyTls ? 'tls' : 'plain',
    );
    if (v.proxyAuthorization) parts.push(`Proxy-Authorization ${proxyAuthFingerprint(v.proxyAuthorization)}`);
  }
  if (v.verdict === 'blocked' || v.verdict === 'direct') parts.push(`from ${v.exit ?? '?'}`);
  return parts.join(' ');
}

/** What verdicts show of a credential: the first 12 hex digits of its SHA-256, never the value. */
export function proxyAuthFingerprint(value: string): string {
  return `sha256:${createHash('sha256').update(value).digest('hex').slice(0, 12)}`;
}

/** One line for terminals and the Web UI: `www.google.com:443 tunnel via 192.168.56.10:3128 ...`. */
export function describeVerdict(v: MeshVerdict): string {
  const key = verdictKey(v);
  return `${v.host}:${v.port} ${key}${v.reason && v.verdict !== 'tunnel' ? ` (${v.reason})` : ''}`;
}
