/**
 * One curl request's walk through the mesh, stage by stage as the file comment of model.ts numbers
 * them. Each stage is a function of the walk's context (`Walk`: the request, the registry and what the
 * walk has recorded so far) that either ends the walk with what curl sees or hands over to a later stage:
 *
 *   1 resolveHost -> 2 intercept -> 3 sidecarOutbound (TLS) or sidecarPlainHttp
 *     -> 4 followRoute -> 5 gatewayHop -> gatewayUpstream -> 6 tunnelHop -> proxyConnect -> 7 reachServer
 *
 * Shortcuts skip stages: a connection the sidecar does not intercept goes to the server, a chain or
 * route without the gateway goes to the service's endpoints (toService), a DestinationRule tunnel goes
 * from the sidecar to the proxy, a gateway tcp_proxy without tunneling_config to the cluster's endpoint.
 */
import type { MeshVerdict } from '../../src/mesh/verdict.js';
import {
  CURL_COULDNT_CONNECT,
  CURL_COULDNT_RESOLVE_HOST,
  CURL_OK,
  CURL_OPERATION_TIMEDOUT,
  CURL_PEER_FAILED_VERIFICATION,
  CURL_SSL_CONNECT_ERROR,
} from './curl-codes.js';
import { addedClusters } from './envoy-filters.js';
import { visitProxy, type ProxyFiles, type ProxyListener, type TunnelAsk } from './proxy-listeners.js';
import { gatewayListeners, pickChain, sidecarListener, sidecarTcpProxy } from './listeners.js';
import { outboundPolicyOf, unmodelledSidecarScope } from './sidecar-resource.js';
import {
  buildRegistry,
  gatewayOf,
  publicAddress,
  qualify,
  resolveInPod,
  serviceEndpoint,
  subsetDefined,
  trafficPolicy,
  visible,
  type ResolvedHost,
} from './registry.js';
import type {
  ClusterTarget,
  Destination,
  GatewayIdentity,
  MeshInput,
  MeshOutcome,
  Port,
  PushStatus,
  RegistryService,
  Target,
  MeshTunnelRequest,
} from './types.js';
import { field, isIp, isPrivate, obj, text, type Obj } from './values.js';

/** What curl sees for one request, and what the proxy logs; model.ts's file comment has the rules. */
export function simulateRequest(input: MeshInput): MeshOutcome {
  return resolveHost(new Walk(input));
}

type OutboundPolicy = NonNullable<MeshInput['istio']>['outboundTrafficPolicy'];

/**
 * The context of one request's walk: what curl asked for, the registry, and what the stages have
 * recorded so far (trace, verdict, access-log lines, push status). Its methods record and end the walk.
 */
class Walk {
  /** The URL's host, without an IPv6 address's brackets. */
  readonly host: string;
  readonly port: number;
  /** An `https` URL: curl speaks TLS with SNI `host` and checks the server's certificate. */
  readonly tls: boolean;
  /** The SNI filter chains see: the host for TLS, none for plain text. */
  readonly sni: string;
  readonly registry: RegistryService[];
  /** The address curl connected to, once the host resolved. */
  remoteIp?: string;
  /** Conflicts istiod reports for the source pod's proxy. */
  pushStatus: PushStatus = {};
  /** Lines the external proxy appends to its access log. */
  readonly logs: string[] = [];
  /** The tunnel the mesh opens to the lab's proxy, once the connection reaches it. */
  tunnelRequest?: MeshTunnelRequest;
  /** What travels is the sidecar's Istio mTLS, not curl's TLS: no server outside the mesh can read it. */
  istioMutualInside = false;
  private readonly trace: string[] = [];
  private verdict?: Omit<MeshVerdict, 'host' | 'port' | 'path'>;

  constructor(readonly input: MeshInput) {
    const url = new URL(input.request.url);
    this.host = url.hostname.replace(/^\[|\]$/g, '');
    this.port = url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
    this.tls = url.protocol === 'https:';
    this.sni = this.tls ? this.host : '';
    this.registry = buildRegistry(input.resources);
  }

  /** Adds a line to the trace (and the verdict's path). */
  note(line: string): void {
    this.trace.push(line);
  }

  /** Records where the mesh sends the connection; the first decision stands. */
  decide(verdict: Omit<MeshVerdict, 'host' | 'port' | 'path'>): void {
    this.verdict ??= verdict;
  }

  /** The connection fails inside the mesh (`proxyRole` closes it). */
  failed(proxyRole: 'sidecar' | 'gateway', reason: string): MeshOutcome {
    this.decide({ verdict: 'fail', reason: `${proxyRole}: ${reason}` });
    return this.reset(`${proxyRole}: ${reason}`);
  }

  /** A proxy on the way closes the connection before curl's TLS handshake completes. */
  reset(why: string): MeshOutcome {
    return this.fail(CURL_SSL_CONNECT_ERROR, 'Recv failure: Connection reset by peer', why);
  }

  /** Ends the walk with curl's `exitCode` and `error`; `why` goes to the trace and, if undecided, the verdict. */
  fail(exitCode: number, error: string, why: string): MeshOutcome {
    this.note(why);
    this.decide({ verdict: 'fail', reason: why });
    return this.finish({ exitCode, httpCode: 0, error });
  }

  /** Ends the walk: curl's result, with everything the stages recorded. */
  finish(result: Pick<MeshOutcome, 'exitCode' | 'httpCode' | 'error' | 'appRequest'>): MeshOutcome {
    const verdict: MeshVerdict = {
      host: this.host,
      port: this.port,
      ...(this.verdict ?? { verdict: 'fail', reason: 'no decision' }),
      path: this.trace,
    };
    return {
      ...result,
      remoteIp: this.remoteIp,
      proxyLogLines: this.logs,
      pushStatus: this.pushStatus,
      verdict,
      trace: this.trace,
      ...(this.tunnelRequest ? { tunnelRequest: this.tunnelRequest } : {}),
    };
  }
}

/** Stage 1, DNS: the pod's resolver (kube-dns and public names; ServiceEntry hosts are not resolved). */
function resolveHost(walk: Walk): MeshOutcome {
  const resolved = resolveInPod(walk.host, walk.input.source.namespace, walk.registry);
  if (!resolved)
    return walk.fail(
      CURL_COULDNT_RESOLVE_HOST,
      `Could not resolve host: ${walk.host}`,
      `dns: ${walk.host} does not resolve`,
    );
  walk.remoteIp = resolved.ip;
  walk.note(
    `dns: ${walk.host} -> ${resolved.ip}${resolved.service ? ` (Service ${resolved.service.host})` : ''}`,
  );
  return intercept(walk, resolved);
}

/** Stage 2, interception: without Istio or without a sidecar the connection goes out directly. */
function intercept(walk: Walk, resolved: ResolvedHost): MeshOutcome {
  const istio = walk.input.istio;
  if (!istio || !walk.input.source.sidecar) {
    walk.note(istio ? 'sidecar: none, direct' : 'istio: not installed, direct');
    walk.decide({ verdict: 'direct', upstream: `${resolved.ip}:${walk.port}` });
    return reachServer(walk, { ip: resolved.ip, port: walk.port, serverHost: walk.host }, 'direct');
  }
  const { resources, source } = walk.input;
  const policy = outboundPolicyOf(resources, source, istio.outboundTrafficPolicy);
  if (policy.from) walk.note(`sidecar: outbound policy ${policy.mode} from ${policy.from}`);
  const unmodelled = unmodelledSidecarScope(resources, source);
  if (unmodelled) walk.note(`sidecar: ${unmodelled}`);
  // Plain text to a port Istio treats as TCP goes through the same TCP filter chains as TLS, without SNI.
  const protocol = resolved.service?.ports.find((p) => p.number === walk.port)?.protocol;
  if (!walk.tls && protocol !== 'TCP') return sidecarPlainHttp(walk, resolved, policy.mode);
  return sidecarOutbound(walk, resolved, policy.mode);
}

/**
 * Stage 3 for plain HTTP to a port Istio treats as HTTP, which the model does not route: a registry
 * service of the host and port, or ALLOW_ANY, lets it through; else REGISTRY_ONLY's BlackHole route
 * answers 502.
 */
function sidecarPlainHttp(walk: Walk, resolved: ResolvedHost, policy: OutboundPolicy): MeshOutcome {
  const known = walk.registry.some(
    (s) => (s.host === walk.host || resolved.service === s) && s.ports.some((p) => p.number === walk.port),
  );
  if (known || policy === 'ALLOW_ANY') {
    walk.note(`sidecar: plain HTTP to ${walk.host}:${walk.port} (${known ? 'registry' : 'ALLOW_ANY'})`);
    walk.decide({ verdict: 'direct', exit: 'sidecar', upstream: `${resolved.ip}:${walk.port}` });
    return reachServer(walk, { ip: resolved.ip, port: walk.port, serverHost: walk.host }, 'direct');
  }
  walk.note('sidecar: REGISTRY_ONLY, no service for plain HTTP; the BlackHole route answers 502');
  walk.decide({ verdict: 'blocked', exit: 'sidecar', reason: 'BlackHoleCluster' });
  return walk.finish({ exitCode: CURL_OK, httpCode: 502 });
}

/**
 * Stage 3, the sidecar's outbound listener (the Service's ClusterIP:port, else 0.0.0.0:port): a filter
 * chain picked by SNI leads to a route or to its service; no chain is the outbound policy's to decide.
 */
function sidecarOutbound(walk: Walk, resolved: ResolvedHost, policy: OutboundPolicy): MeshOutcome {
  const listenerIp = resolved.service?.clusterIp ?? '0.0.0.0';
  const built = sidecarListener(
    walk.registry,
    walk.input.resources,
    walk.input.source,
    listenerIp,
    walk.port,
  );
  walk.pushStatus = built.pushStatus;
  for (const c of built.conflicts) walk.note(`sidecar: conflict on ${listenerIp}_${walk.port}: ${c}`);
  const chain = pickChain(
    built.chains.map((c) => ({ sni: c.sni, value: c })),
    walk.sni,
  );
  if (!chain) {
    if (policy === 'REGISTRY_ONLY') {
      walk.decide({ verdict: 'blocked', exit: 'sidecar', reason: 'BlackHoleCluster (REGISTRY_ONLY)' });
      return walk.reset(
        `sidecar: no filter chain for ${walk.host}:${walk.port}; REGISTRY_ONLY sends it to the BlackHoleCluster`,
      );
    }
    walk.note(`sidecar: no filter chain for ${walk.host}:${walk.port}; ALLOW_ANY passes it through`);
    walk.decide({ verdict: 'direct', exit: 'sidecar', upstream: `${resolved.ip}:${walk.port}` });
    return reachServer(walk, { ip: resolved.ip, port: walk.port, serverHost: walk.host }, 'direct');
  }
  const picked = chain.value;
  walk.note(`sidecar: chain ${picked.origin} (server_names ${picked.sni ? picked.sni.join(',') : '*'})`);
  const { source } = walk.input;
  const tcpProxy = sidecarTcpProxy(
    walk.input.resources,
    walk.registry,
    { namespace: source.namespace, labels: source.labels ?? {} },
    walk.port,
    picked,
  );
  const tunnelled = sidecarTunnel(walk, tcpProxy);
  if (tunnelled) return tunnelled;
  if (picked.route) return followRoute(walk, picked.route);
  return toService(walk, picked.service, walk.port, 'sidecar');
}

/**
 * Stage 4 at the sidecar when the chain's tcp_proxy tunnels (a DestinationRule tunnel, or an EnvoyFilter
 * patch that adds `tunneling_config`): the tunnel through its cluster. Undefined otherwise, or when istiod
 * would build no such cluster (followRoute then says why).
 */
function sidecarTunnel(walk: Walk, tcpProxy: Obj): MeshOutcome | undefined {
  const tunnel = tunnelOf(tcpProxy, walk.sni);
  if (!tunnel) return undefined;
  const name = text(field(tcpProxy, 'cluster'));
  const cluster = generatedCluster(walk, name, walk.input.source.namespace);
  if (!cluster) return undefined;
  walk.note(`sidecar: tcp_proxy tunnels to ${tunnel.authority} over cluster ${name}`);
  return tunnelHop(walk, cluster, tunnel, 'sidecar');
}

/** A tcp_proxy's tunnel, as its `tunneling_config` asks for it. */
interface TunnelSpec {
  /** The CONNECT authority (`hostname`, %REQUESTED_SERVER_NAME% filled in with the connection's SNI). */
  authority: string;
  method: 'CONNECT' | 'POST';
  /** The Proxy-Authorization header among its `headers_to_add`. */
  proxyAuthorization?: string;
}

/** What a tcp_proxy's `tunneling_config` opens for a connection to `host`; undefined without one. */
function tunnelOf(tcpProxy: Obj, host: string): TunnelSpec | undefined {
  const tunneling = obj(field(tcpProxy, 'tunneling_config'));
  const hostname = text(tunneling.hostname);
  if (!hostname) return undefined;
  const headers = Array.isArray(tunneling.headers_to_add) ? (tunneling.headers_to_add as unknown[]) : [];
  const auth = headers
    .map((h) => obj(obj(h).header))
    .find((h) => text(h.key).toLowerCase() === 'proxy-authorization');
  return {
    authority: hostname.replace(/%REQUESTED_SERVER_NAME%/g, host),
    method: field(tunneling, 'use_post') === true ? 'POST' : 'CONNECT',
    ...(auth && text(auth.value) ? { proxyAuthorization: text(auth.value) } : {}),
  };
}

/**
 * Stage 4, from the sidecar: where a route's destination leads. A service that selects a gateway
 * Deployment goes to the gateway (wrapped in TLS when the DestinationRule says so); otherwise the
 * cluster istiod generates tunnels through its endpoint or connects to the service.
 */
function followRoute(walk: Walk, dest: Destination): MeshOutcome {
  const proxyNs = walk.input.source.namespace;
  const resolved = routeCluster(walk, dest, proxyNs);
  if ('missing' in resolved) return walk.failed('sidecar', resolved.missing);
  const { service, port } = resolved;
  const gateway = gatewayOf(service, walk.input);
  if (gateway) {
    const svcPort = service.ports.find((p) => p.number === port)!;
    const policy = trafficPolicy(walk.input.resources, service, dest.subset, port, proxyNs);
    const mode = text(obj(policy?.tls).mode);
    // ISTIO_MUTUAL's SNI is the DestinationRule's `sni`, else Istio's own name for the cluster.
    const sni =
      mode === 'ISTIO_MUTUAL'
        ? text(obj(policy?.tls).sni) || `outbound_.${port}_.${dest.subset ?? ''}_.${service.host}`
        : ['SIMPLE', 'MUTUAL'].includes(mode)
          ? text(obj(policy?.tls).sni)
          : walk.sni;
    const wrapped = ['SIMPLE', 'MUTUAL', 'ISTIO_MUTUAL'].includes(mode);
    walk.note(
      `sidecar: to the egress gateway ${service.host}:${port}${wrapped ? ` wrapped in TLS (${mode}, SNI ${sni || 'none'})` : ''}`,
    );
    return gatewayHop(walk, gateway, svcPort, sni, mode === 'ISTIO_MUTUAL');
  }
  const cluster = generatedCluster(walk, `outbound|${port}|${dest.subset ?? ''}|${service.host}`, proxyNs);
  if (!cluster)
    return walk.failed('sidecar', `no cluster for subset ${dest.subset ?? ''} of ${service.host}`);
  walk.note(`sidecar: to ${service.host}:${port} directly`);
  return toService(walk, service, port, 'sidecar');
}

/** A route's destination as a cluster: the visible service and the port, or why istiod builds none. */
function routeCluster(
  walk: Walk,
  dest: Destination,
  proxyNs: string,
): { service: RegistryService; port: number } | { missing: string } {
  const fqdn = qualify(dest.host, dest.namespace);
  const service = walk.registry.find((s) => s.host === fqdn && visible(s.exportTo, s.namespace, proxyNs));
  if (!service) return { missing: `route to ${fqdn}, which is not in the registry (no cluster)` };
  const port = dest.port ?? (service.ports.length === 1 ? service.ports[0]!.number : undefined);
  if (port === undefined || !service.ports.some((p) => p.number === port)) {
    return {
      missing: `route to ${fqdn} port ${port ?? '?'}, which the service does not have (no cluster)`,
    };
  }
  if (dest.subset && !subsetDefined(walk.input.resources, service, dest.subset, proxyNs)) {
    return {
      missing: `route to subset ${dest.subset} of ${fqdn}, which no visible DestinationRule defines`,
    };
  }
  return { service, port };
}

/** A cluster istiod generates for `outbound|port|subset|host`, as the proxy in `proxyNs` sees it. */
function generatedCluster(walk: Walk, name: string, proxyNs: string): ClusterTarget | undefined {
  const parts = name.split('|');
  if (parts.length !== 4 || parts[0] !== 'outbound') return undefined;
  const [, portText, subset, host] = parts as [string, string, string, string];
  const port = Number(portText);
  const service = walk.registry.find((s) => s.host === host && visible(s.exportTo, s.namespace, proxyNs));
  if (!service || !service.ports.some((p) => p.number === port)) return undefined;
  if (subset && !subsetDefined(walk.input.resources, service, subset, proxyNs)) return undefined;
  const policy = trafficPolicy(walk.input.resources, service, subset || undefined, port, proxyNs);
  const protocol = service.ports.find((p) => p.number === port)?.protocol ?? '';
  return {
    name,
    endpoint: serviceEndpoint(service, port),
    tls: ['SIMPLE', 'MUTUAL', 'ISTIO_MUTUAL'].includes(text(obj(policy?.tls).mode)),
    http2: ['HTTP2', 'GRPC'].includes(protocol),
  };
}

/**
 * Stage 4 without a gateway or tunnel: a cluster of the service's own endpoints. A Service's first
 * endpoint; a ServiceEntry with resolution NONE keeps the address curl resolved; else its first endpoint
 * (or its host) through the sim's public DNS.
 */
function toService(
  walk: Walk,
  service: RegistryService,
  servicePort: number,
  exit: 'sidecar' | 'gateway',
): MeshOutcome {
  if (service.kind === 'Service') {
    const endpoint = service.endpoints[0];
    const svcPort = service.ports.find((p) => p.number === servicePort);
    if (!endpoint) return walk.failed(exit, `cluster of ${service.host} has no endpoints`);
    const upstream = { ip: endpoint.address, port: endpoint.port ?? svcPort?.targetPort ?? servicePort };
    walk.decide({ verdict: 'direct', exit, upstream: `${upstream.ip}:${upstream.port}` });
    return reachServer(walk, { ...upstream, serverHost: service.host }, 'direct');
  }
  if (service.resolution === 'NONE') {
    walk.decide({ verdict: 'direct', exit, upstream: `${walk.remoteIp}:${walk.port}` });
    return reachServer(walk, { ip: walk.remoteIp ?? '', port: walk.port, serverHost: walk.host }, 'direct');
  }
  const endpoint = service.endpoints[0];
  const address = endpoint?.address ?? service.host;
  const ip = isIp(address) ? address : (publicAddress(address) ?? '');
  const targetPort =
    endpoint?.port ?? service.ports.find((p) => p.number === servicePort)?.targetPort ?? servicePort;
  walk.decide({ verdict: 'direct', exit, upstream: `${address}:${targetPort}` });
  return reachServer(
    walk,
    { ip, port: targetPort, serverHost: isIp(address) ? walk.host : address },
    'direct',
  );
}

/**
 * Stage 5: the egress gateway, reached on the Service port `svcPort` with TLS SNI `sni`. Its listener on
 * the target port (none while Envoy rejects the update) picks a filter chain by SNI.
 */
function gatewayHop(
  walk: Walk,
  gw: GatewayIdentity,
  svcPort: Port,
  sni: string,
  istioMutual: boolean,
): MeshOutcome {
  const targetPort = svcPort.targetPort ?? svcPort.number;
  const built = gatewayListeners(walk.input.resources, walk.registry, gw, svcPort.number, targetPort);
  if (built.nacks.length > 0) {
    return walk.failed(
      'gateway',
      `Envoy rejected the listener update (${built.nacks.join('; ')}); the proxy keeps the listeners it had before`,
    );
  }
  const listener = built.listeners[0];
  if (!listener) return walk.failed('gateway', `no listener on ${targetPort}`);
  const chain = pickChain(
    listener.chains.map((c) => ({ sni: c.sni, value: c })),
    sni,
  );
  if (!chain) {
    return walk.failed('gateway', `listener ${listener.name} has no filter chain for SNI ${sni || '(none)'}`);
  }
  walk.note(`gateway: listener ${listener.name} (${listener.origin}), chain ${chain.value.origin}`);
  // A chain that terminates Istio's mTLS takes only that; one that passes TLS through would pass Istio's
  // wrapping on to a server that cannot read it.
  if (chain.value.istioMutual && !istioMutual) {
    return walk.failed(
      'gateway',
      'the chain expects Istio mTLS from the sidecar, which sent its TLS as it is',
    );
  }
  if (!chain.value.istioMutual && istioMutual) {
    // The gateway forwards the bytes as they are, tunnel and all; only the server cannot read them.
    walk.note("gateway: the chain passes the sidecar's Istio mTLS through unopened");
    walk.istioMutualInside = true;
  }
  const tcpProxy = chain.value.tcpProxy;
  if (!tcpProxy) return walk.failed('gateway', 'the filter chain has no tcp_proxy');
  return gatewayUpstream(walk, gw, tcpProxy);
}

/**
 * Stage 5, the chain's tcp_proxy: the cluster it names (an EnvoyFilter CLUSTER ADD, or one istiod
 * generates), through which it opens a tunnel (with `tunneling_config`) or connects directly.
 */
function gatewayUpstream(walk: Walk, gw: GatewayIdentity, tcpProxy: Obj): MeshOutcome {
  const clusterName = text(tcpProxy.cluster);
  const cluster =
    addedClusters(walk.input.resources, gw).find((c) => c.name === clusterName) ??
    generatedCluster(walk, clusterName, gw.namespace);
  if (!cluster)
    return walk.failed('gateway', `tcp_proxy names cluster "${clusterName}", which the proxy does not have`);
  const tunnel = tunnelOf(tcpProxy, walk.sni);
  if (tunnel) {
    walk.note(`gateway: tcp_proxy tunnels over cluster ${clusterName}`);
    return tunnelHop(walk, cluster, tunnel, 'gateway');
  }
  if (!cluster.endpoint) return walk.failed('gateway', `cluster ${clusterName} has no endpoint`);
  walk.note(`gateway: tcp_proxy to ${cluster.endpoint.ip}:${cluster.endpoint.port}`);
  walk.decide({
    verdict: 'direct',
    exit: 'gateway',
    upstream: `${cluster.endpoint.ip}:${cluster.endpoint.port}`,
  });
  if (walk.input.lab.proxy && cluster.endpoint.ip === walk.input.lab.proxy.ip) {
    return walk.reset('gateway: raw TLS to the proxy without a CONNECT (no tunneling_config)');
  }
  return reachServer(walk, { ...cluster.endpoint, serverHost: walk.host }, 'direct');
}

/**
 * Stage 6: a CONNECT (or POST) tunnel to `authority` through a cluster's endpoint. It gets through only
 * when the endpoint is the lab's proxy and one of its listeners serves the tunnel as the cluster opens it.
 */
function tunnelHop(
  walk: Walk,
  cluster: ClusterTarget,
  tunnel: TunnelSpec,
  exit: 'sidecar' | 'gateway',
): MeshOutcome {
  const { authority, method, proxyAuthorization } = tunnel;
  const protocol = cluster.http2 ? 'HTTP/2' : 'HTTP/1.1';
  const proxy = cluster.endpoint;
  walk.decide({
    verdict: 'tunnel',
    exit,
    proxy: proxy ? `${proxy.ip}:${proxy.port}` : undefined,
    authority,
    method,
    protocol,
    proxyTls: cluster.tls,
    ...(proxyAuthorization ? { proxyAuthorization } : {}),
  });
  const lab = walk.input.lab.proxy;
  if (!proxy) return walk.reset(`tunnel: cluster ${cluster.name} has no endpoint`);
  if (!lab || proxy.ip !== lab.ip) {
    return walk.reset(
      `tunnel: ${proxy.ip}:${proxy.port} is not the lab's proxy${lab ? ` (${lab.ip})` : ''}; the upstream connection fails`,
    );
  }
  const ask: TunnelAsk = {
    port: proxy.port,
    tls: cluster.tls,
    protocol,
    method,
    ...(proxyAuthorization ? { authorization: proxyAuthorization } : {}),
  };
  return proxyConnect(walk, lab.listeners, ask, authority, lab.files);
}

/**
 * Stage 6, at the lab's proxy, which serves the tunnel or refuses it as its Envoy config says
 * (proxy-listeners.ts): it resolves the authority, logs the tunnel's opening and its close
 * (envoy/envoy.yaml's access-log format) and connects to the target.
 */
function proxyConnect(
  walk: Walk,
  listeners: ProxyListener[],
  ask: TunnelAsk,
  authority: string,
  files?: ProxyFiles,
): MeshOutcome {
  walk.tunnelRequest = { ...ask, authority, ...(walk.istioMutualInside ? { istioMutualInside: true } : {}) };
  const visit = visitProxy(
    listeners,
    ask,
    authority,
    { time: walk.input.now, client: `${walk.input.lab.nodeIp}:${walk.input.sourcePort}` },
    files,
  );
  walk.logs.push(...visit.lines);
  if (!visit.served) return walk.reset(`tunnel: ${visit.why}`);
  walk.note(
    `tunnel: ${visit.note} through ${walk.input.lab.proxy!.ip}; ${visit.lines.length} access-log lines`,
  );
  return reachServer(
    walk,
    { ip: visit.target.ip, port: visit.target.port, serverHost: visit.target.host },
    'tunnel',
  );
}

/**
 * Stage 7: who answers at `target` (kube-proxy first turns a ClusterIP into an endpoint): the lab's app
 * machine (the caller runs the real request), nothing at a private address, else a public server whose
 * certificate must name the requested host.
 */
function reachServer(walk: Walk, target: Target, via: 'direct' | 'tunnel'): MeshOutcome {
  if (walk.istioMutualInside) {
    return walk.reset(
      `server: ${target.serverHost} at ${target.ip}:${target.port} gets Istio's mTLS handshake, which it cannot answer; the sidecar's handshake fails`,
    );
  }
  let { ip, port: targetPort } = target;
  const service = walk.registry.find((s) => s.clusterIp === ip);
  if (service) {
    // kube-proxy sends ClusterIP traffic to one of the Service's endpoints.
    const endpoint = service.endpoints[0];
    if (!endpoint) {
      return walk.fail(
        CURL_COULDNT_CONNECT,
        `Failed to connect to ${walk.host} port ${walk.port} after 0 ms: Couldn't connect to server`,
        `kube-proxy: Service ${service.host} has no endpoints`,
      );
    }
    const svcPort = service.ports.find((p) => p.number === targetPort);
    ip = endpoint.address;
    targetPort = endpoint.port ?? svcPort?.targetPort ?? targetPort;
  }
  const app = walk.input.lab.app;
  if (app && ip === app.ip && (targetPort === app.port || targetPort === app.httpPort)) {
    const server = targetPort === app.port ? 'tls' : 'http';
    walk.note(
      `server: the lab's app at ${ip}:${targetPort} (${server === 'tls' ? 'mutual TLS' : 'plain HTTP'}, ${via})`,
    );
    return walk.finish({
      exitCode: CURL_OK,
      httpCode: 0,
      appRequest: { host: walk.host, port: walk.port, via, server },
    });
  }
  if (isPrivate(ip)) {
    return walk.fail(
      CURL_OPERATION_TIMEDOUT,
      `Connection timed out after ${10_000} milliseconds`,
      `server: nothing answers at ${ip}:${targetPort}`,
    );
  }
  if (walk.tls && target.serverHost !== walk.host && !walk.input.request.insecure) {
    return walk.fail(
      CURL_PEER_FAILED_VERIFICATION,
      `SSL: no alternative certificate subject name matches target host name '${walk.host}'`,
      `server: ${ip} presents the certificate of ${target.serverHost}, not ${walk.host}`,
    );
  }
  walk.note(`server: ${target.serverHost} (${ip}:${targetPort}) answers 200 (${via})`);
  return walk.finish({ exitCode: CURL_OK, httpCode: 200 });
}
