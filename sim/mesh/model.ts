/**
 * The simulated lab's mesh: a pure function from the cluster's objects, the Istio installation and one
 * curl from a pod to what curl sees, the external proxy's access-log lines, istiod's push status and
 * what Envoy would reject.
 *
 * It is held to real Istio: test/mesh-differential.test.ts runs every manifest set of
 * test/fixtures/mesh-corpus/ through this model and through the Istio oracle (tools/istio-oracle:
 * istiod's own config generator and Envoy's field rules), and the verdicts, conflicts and NACKs must be
 * the same. Where the model is simpler than Istio, the rule below says so.
 *
 * The path a connection takes, stage by stage:
 * 1. DNS. The pod's resolver knows cluster Services (kube-dns) and public names; Istio's DNS proxying is
 *    off by default, so ServiceEntry hosts are not resolved by the mesh.
 * 2. Interception. Without Istio, or in a pod without a sidecar (or from the istio-proxy container
 *    itself, UID 1337), the connection goes out directly.
 * 3. The sidecar's outbound listener for the destination (the Service's ClusterIP:port, else
 *    0.0.0.0:port): one filter chain per registry service of that port, matched on SNI; a
 *    VirtualService bound to the service (gateway `mesh`) replaces its chain by one per TLS match.
 *    Two chains with the same match are a conflict: istiod keeps the first and reports
 *    `pilot_conflict_outbound_listener_tcp_over_current_tcp` under the key `0.0.0.0_443`. No chain:
 *    REGISTRY_ONLY sends it to the BlackHoleCluster (curl exit 35), ALLOW_ANY passes it through.
 * 4. A route's cluster `outbound|port|subset|host`: the service must be visible to the proxy, have the
 *    port, and a named subset must exist in the DestinationRule the proxy sees, found in Istio's order
 *    (the proxy's namespace, then the service's namespace, then the root namespace istio-system, each
 *    subject to exportTo); otherwise istiod builds no cluster and Envoy closes the connection. The
 *    rule's policy (subset fields over top-level ones, port-level settings first) gives TLS to the
 *    upstream (ISTIO_MUTUAL wraps the connection with SNI `outbound_.PORT_.SUBSET_.HOST`) and the
 *    tunnel (CONNECT or POST to targetHost:targetPort; HTTP/2 when the port's protocol is HTTP2 or GRPC).
 * 5. The egress gateway: any gateway Deployment of the installation, with its pods' labels. Its
 *    listener on the Service's target port (443 -> 8443), named 0.0.0.0_8443, comes from Gateway
 *    servers on the Service port, but only when a VirtualService binds a TLS route to them (a host
 *    `ns/name` binds only VirtualServices of namespace ns, `./name` those of the Gateway's namespace);
 *    EnvoyFilter LISTENER ADD patches add theirs, and NETWORK_FILTER MERGE / REPLACE patches on the
 *    tcp_proxy of a generated listener change it. Two listeners with one name, or a tcp_proxy without
 *    stat_prefix or cluster (istiod drops unknown fields of EnvoyFilter values), make Envoy reject the
 *    whole listener update (a NACK): the gateway keeps its earlier listeners, which the model, seeing
 *    one snapshot, treats as none. A chain is picked by SNI; its tcp_proxy names a cluster (an
 *    EnvoyFilter CLUSTER ADD, or one istiod generates as in stage 4) and, with `tunneling_config`,
 *    opens a CONNECT tunnel through it.
 * 6. The external proxy (envoy/envoy.yaml) accepts CONNECT over TLS only. It writes one access-log line
 *    when the tunnel is established (type DownstreamTunnelSuccessfullyEstablished) and one when it closes
 *    (DownstreamEnd, flags `DC`: the gateway ended it after curl; with a real site that closes first the
 *    flags may be `-`, so checks match the type).
 * 7. The server: a public host answers 200 (the sim never contacts the internet); the lab's app machine
 *    is answered by the real nginx (the caller runs a real curl for `appRequest`); a server that is
 *    not the requested host fails curl's certificate check (exit 60) unless `--insecure`.
 *
 * Not modelled: HTTP routes and `http` VirtualService rules (plain-HTTP requests follow the registry and
 * the outbound policy only), Sidecar resources, merging of several DestinationRules for one host,
 * EnvoyFilter patches other than LISTENER/CLUSTER ADD and NETWORK_FILTER MERGE/REPLACE on tcp_proxy,
 * weights (the heaviest route wins).
 */
import type { MeshVerdict } from '../../src/mesh/verdict.js';

/** A Kubernetes object as stored by the simulated API server. */
export interface MeshObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [field: string]: unknown;
}

export interface MeshInput {
  /** The cluster's objects, oldest first (Istio orders services and configs by creation time). */
  resources: MeshObject[];
  /** The Istio installation, when there is one. */
  istio?: {
    outboundTrafficPolicy: 'ALLOW_ANY' | 'REGISTRY_ONLY';
    /** Gateway Deployments of the installation (`namespace/name`); the demo profile's by default. */
    gateways?: string[];
  };
  lab: {
    /** The Kubernetes node's address: pod traffic leaving the node is masqueraded to it. */
    nodeIp: string;
    proxy?: { ip: string; port: number };
    app?: { ip: string; port: number };
  };
  source: {
    pod: string;
    namespace: string;
    /** The pod has an istio-proxy sidecar and curl does not run in it. */
    sidecar: boolean;
  };
  request: { url: string; insecure: boolean };
  /** When the request starts (the access log's START_TIME). */
  now: Date;
  /** The source port the node picks for the tunnel to the proxy. */
  sourcePort: number;
}

export interface PushStatusEntry {
  proxy: string;
  message: string;
}

/** istiod's `/debug/push_status` body: metric name -> listener -> entry; `{}` when clean. */
export type PushStatus = Record<string, Record<string, PushStatusEntry>>;

export interface MeshOutcome {
  /** curl's exit code: 0 once an HTTP response arrived. */
  exitCode: number;
  /** 0 when there was no HTTP response (curl's `000`). */
  httpCode: number;
  /** curl's error text, without the `curl: (N) ` prefix. */
  error?: string;
  /** The address curl connected to. */
  remoteIp?: string;
  /** Lines the external proxy appends to its access log. */
  proxyLogLines: string[];
  /** Set when the lab's app machine answers: the caller runs a real curl against it. */
  appRequest?: { host: string; port: number; via: 'direct' | 'tunnel' };
  /**
   * Set when the connection reaches the lab's proxy as a CONNECT it serves: the caller may open that
   * tunnel through the real proxy instead of taking `proxyLogLines` and the modelled answer.
   */
  tunnelRequest?: { authority: string };
  /** Conflicts istiod reports for the source pod's proxy. */
  pushStatus: PushStatus;
  /** Where the mesh sends the connection, in the shape the Istio oracle answers in. */
  verdict: MeshVerdict;
  /** One line per decision, for the sim's trace log and for reviewers. */
  trace: string[];
}

export const CONFLICT_TCP_OVER_TCP = 'pilot_conflict_outbound_listener_tcp_over_current_tcp';

/** The gateway Deployments of the demo profile. */
export const DEMO_GATEWAYS = ['istio-system/istio-egressgateway', 'istio-system/istio-ingressgateway'];

const ROOT_NAMESPACE = 'istio-system';

/** Public addresses of the PoC's hosts (from its access log); other public names get a TEST-NET-3 address. */
const PUBLIC_DNS: Record<string, string> = {
  'www.google.com': '216.58.209.4',
  'www.wikipedia.org': '91.198.174.192',
};

type Obj = Record<string, unknown>;

interface Port {
  number: number;
  protocol: string;
  name: string;
  targetPort?: number;
}

interface RegistryService {
  host: string;
  namespace: string;
  kind: 'ServiceEntry' | 'Service';
  ports: Port[];
  addresses: string[];
  resolution: string;
  /** Endpoint addresses (IPs or host names), with their port when known. */
  endpoints: { address: string; port?: number }[];
  exportTo?: string[];
  clusterIp?: string;
  /** For Kubernetes Services: the pod labels it selects. */
  selector?: Record<string, string>;
}

interface Destination {
  host: string;
  port?: number;
  subset?: string;
  /** Namespace of the VirtualService, for short host names. */
  namespace: string;
}

interface Chain {
  /** `server_names` of the chain; null matches any connection (a TCP service or a `tcp` route). */
  sni: string[] | null;
  service: RegistryService;
  /** Where the chain sends traffic; undefined: the service's own endpoints. */
  route?: Destination;
  origin: string;
}

interface Target {
  ip: string;
  port: number;
  /** Whose certificate the server presents. */
  serverHost: string;
}

/** A gateway pod's identity: the Deployment's namespace and its pods' labels. */
interface GatewayIdentity {
  namespace: string;
  labels: Record<string, string>;
}

/** One listener of the egress gateway as Envoy would receive it. */
interface GatewayListener {
  name: string;
  origin: string;
  chains: { sni: string[] | null; tcpProxy: Obj | undefined; origin: string }[];
}

/** What a cluster connects to and how. */
interface ClusterTarget {
  name: string;
  endpoint?: { ip: string; port: number };
  tls: boolean;
  http2: boolean;
  /** For clusters istiod generates: the DestinationRule's tunnel, which istiod writes into the tcp_proxy. */
  tunnel?: { hostname: string; usePost: boolean };
}

/** What curl sees for one request, and what the proxy logs; see the file comment for the rules. */
export function simulateRequest(input: MeshInput): MeshOutcome {
  return new RequestWalk(input).run();
}

/** The verdicts, push status and NACKs for several hosts, as the differential tests compare them. */
export function meshVerdicts(
  input: Omit<MeshInput, 'request'>,
  probes: { host: string; port?: number }[],
): { verdicts: MeshVerdict[]; pushStatus: PushStatus; nacks: { sidecar: string[]; gateway: string[] } } {
  const outcomes = probes.map((p) =>
    simulateRequest({ ...input, request: { url: `https://${p.host}:${p.port ?? 443}`, insecure: false } }),
  );
  return {
    verdicts: outcomes.map((o) => o.verdict),
    pushStatus: pushStatusOf(input.resources, [input.source]),
    // The model builds no sidecar config Envoy could reject; the gateways' listeners it checks all.
    nacks: { sidecar: [], gateway: gatewayConfigNacks(input) },
  };
}

/** The request's walk through the mesh, one method per stage of the file comment. */
class RequestWalk {
  private readonly trace: string[] = [];
  private readonly logs: string[] = [];
  private pushStatus: PushStatus = {};
  private readonly registry: RegistryService[];
  private readonly host: string;
  private readonly port: number;
  private readonly tls: boolean;
  private remoteIp?: string;
  private verdict?: Omit<MeshVerdict, 'host' | 'port' | 'path'>;
  private tunnelRequest?: { authority: string };

  constructor(private readonly input: MeshInput) {
    const url = new URL(input.request.url);
    this.host = url.hostname.replace(/^\[|\]$/g, '');
    this.port = url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
    this.tls = url.protocol === 'https:';
    this.registry = buildRegistry(input.resources);
  }

  run(): MeshOutcome {
    // Stage 1: DNS.
    const resolved = resolveInPod(this.host, this.input.source.namespace, this.registry);
    if (!resolved)
      return this.fail(6, `Could not resolve host: ${this.host}`, `dns: ${this.host} does not resolve`);
    this.remoteIp = resolved.ip;
    this.note(
      `dns: ${this.host} -> ${resolved.ip}${resolved.service ? ` (Service ${resolved.service.host})` : ''}`,
    );

    // Stage 2: interception.
    const istio = this.input.istio;
    if (!istio || !this.input.source.sidecar) {
      this.note(istio ? 'sidecar: none, direct' : 'istio: not installed, direct');
      this.decide({ verdict: 'direct', upstream: `${resolved.ip}:${this.port}` });
      return this.reach({ ip: resolved.ip, port: this.port, serverHost: this.host }, 'direct');
    }

    // Stage 3: the sidecar's outbound listener.
    if (!this.tls) {
      const known = this.registry.some(
        (s) =>
          (s.host === this.host || resolved.service === s) && s.ports.some((p) => p.number === this.port),
      );
      if (known || istio.outboundTrafficPolicy === 'ALLOW_ANY') {
        this.note(`sidecar: plain HTTP to ${this.host}:${this.port} (${known ? 'registry' : 'ALLOW_ANY'})`);
        this.decide({ verdict: 'direct', exit: 'sidecar', upstream: `${resolved.ip}:${this.port}` });
        return this.reach({ ip: resolved.ip, port: this.port, serverHost: this.host }, 'direct');
      }
      this.note('sidecar: REGISTRY_ONLY, no service for plain HTTP; the BlackHole route answers 502');
      this.decide({ verdict: 'blocked', exit: 'sidecar', reason: 'BlackHoleCluster' });
      return this.finish({ exitCode: 0, httpCode: 502 });
    }
    const listenerIp = resolved.service?.clusterIp ?? '0.0.0.0';
    const built = sidecarListener(
      this.registry,
      this.input.resources,
      this.input.source,
      listenerIp,
      this.port,
    );
    this.pushStatus = built.pushStatus;
    for (const c of built.conflicts) this.note(`sidecar: conflict on ${listenerIp}_${this.port}: ${c}`);
    const chain = pickChain(
      built.chains.map((c) => ({ sni: c.sni, value: c })),
      this.host,
    );
    if (!chain) {
      if (istio.outboundTrafficPolicy === 'REGISTRY_ONLY') {
        this.decide({ verdict: 'blocked', exit: 'sidecar', reason: 'BlackHoleCluster (REGISTRY_ONLY)' });
        return this.reset(
          `sidecar: no filter chain for ${this.host}:${this.port}; REGISTRY_ONLY sends it to the BlackHoleCluster`,
        );
      }
      this.note(`sidecar: no filter chain for ${this.host}:${this.port}; ALLOW_ANY passes it through`);
      this.decide({ verdict: 'direct', exit: 'sidecar', upstream: `${resolved.ip}:${this.port}` });
      return this.reach({ ip: resolved.ip, port: this.port, serverHost: this.host }, 'direct');
    }
    const picked = chain.value;
    this.note(`sidecar: chain ${picked.origin} (server_names ${picked.sni ? picked.sni.join(',') : '*'})`);
    if (picked.route) return this.follow(picked.route);
    return this.toService(picked.service, this.port, 'sidecar');
  }

  /** Stage 4, from the sidecar: where a route's destination leads. */
  private follow(dest: Destination): MeshOutcome {
    const proxyNs = this.input.source.namespace;
    const resolved = this.routeCluster(dest, proxyNs);
    if ('missing' in resolved) return this.failed('sidecar', resolved.missing);
    const { service, port } = resolved;
    const gateway = gatewayOf(service, this.input);
    if (gateway) {
      const svcPort = service.ports.find((p) => p.number === port)!;
      const policy = trafficPolicy(this.input.resources, service, dest.subset, port, proxyNs);
      const mode = text(obj(policy?.tls).mode);
      const sni =
        mode === 'ISTIO_MUTUAL'
          ? `outbound_.${port}_.${dest.subset ?? ''}_.${service.host}`
          : ['SIMPLE', 'MUTUAL'].includes(mode)
            ? text(obj(policy?.tls).sni)
            : this.host;
      this.note(
        `sidecar: to the egress gateway ${service.host}:${port}${sni === this.host ? '' : ` wrapped in TLS (${mode}, SNI ${sni || 'none'})`}`,
      );
      return this.gateway(gateway, svcPort, sni);
    }
    const cluster = this.generatedCluster(`outbound|${port}|${dest.subset ?? ''}|${service.host}`, proxyNs);
    if (!cluster)
      return this.failed('sidecar', `no cluster for subset ${dest.subset ?? ''} of ${service.host}`);
    if (cluster.tunnel) {
      this.note(`sidecar: DestinationRule tunnel to ${cluster.tunnel.hostname} via ${service.host}`);
      return this.tunnelThrough(cluster, cluster.tunnel.hostname, cluster.tunnel.usePost, 'sidecar');
    }
    this.note(`sidecar: to ${service.host}:${port} directly`);
    return this.toService(service, port, 'sidecar');
  }

  /** A route's destination as a cluster: the visible service and the port, or why istiod builds none. */
  private routeCluster(
    dest: Destination,
    proxyNs: string,
  ): { service: RegistryService; port: number } | { missing: string } {
    const fqdn = qualify(dest.host, dest.namespace);
    const service = this.registry.find((s) => s.host === fqdn && visible(s.exportTo, s.namespace, proxyNs));
    if (!service) return { missing: `route to ${fqdn}, which is not in the registry (no cluster)` };
    const port = dest.port ?? (service.ports.length === 1 ? service.ports[0]!.number : undefined);
    if (port === undefined || !service.ports.some((p) => p.number === port)) {
      return {
        missing: `route to ${fqdn} port ${port ?? '?'}, which the service does not have (no cluster)`,
      };
    }
    if (dest.subset && !subsetDefined(this.input.resources, service, dest.subset, proxyNs)) {
      return {
        missing: `route to subset ${dest.subset} of ${fqdn}, which no visible DestinationRule defines`,
      };
    }
    return { service, port };
  }

  /** Stage 5: the egress gateway, reached on the Service port `svcPort` with TLS SNI `sni`. */
  private gateway(gw: GatewayIdentity, svcPort: Port, sni: string): MeshOutcome {
    const targetPort = svcPort.targetPort ?? svcPort.number;
    const built = gatewayListeners(this.input.resources, this.registry, gw, svcPort.number, targetPort);
    if (built.nacks.length > 0) {
      return this.failed(
        'gateway',
        `Envoy rejected the listener update (${built.nacks.join('; ')}); the proxy keeps the listeners it had before`,
      );
    }
    const listener = built.listeners[0];
    if (!listener) return this.failed('gateway', `no listener on ${targetPort}`);
    const chain = pickChain(
      listener.chains.map((c) => ({ sni: c.sni, value: c })),
      sni,
    );
    if (!chain) {
      return this.failed(
        'gateway',
        `listener ${listener.name} has no filter chain for SNI ${sni || '(none)'}`,
      );
    }
    this.note(`gateway: listener ${listener.name} (${listener.origin}), chain ${chain.value.origin}`);
    const tcpProxy = chain.value.tcpProxy;
    if (!tcpProxy) return this.failed('gateway', 'the filter chain has no tcp_proxy');
    const clusterName = text(tcpProxy.cluster);
    const cluster =
      addedClusters(this.input.resources, gw).find((c) => c.name === clusterName) ??
      this.generatedCluster(clusterName, gw.namespace);
    if (!cluster)
      return this.failed(
        'gateway',
        `tcp_proxy names cluster "${clusterName}", which the proxy does not have`,
      );
    const tunneling = obj(field(tcpProxy, 'tunneling_config'));
    if (text(tunneling.hostname)) {
      this.note(`gateway: tcp_proxy tunnels over cluster ${clusterName}`);
      return this.tunnelThrough(
        cluster,
        text(tunneling.hostname).replace(/%REQUESTED_SERVER_NAME%/g, this.host),
        field(tunneling, 'use_post') === true,
        'gateway',
      );
    }
    if (!cluster.endpoint) return this.failed('gateway', `cluster ${clusterName} has no endpoint`);
    this.note(`gateway: tcp_proxy to ${cluster.endpoint.ip}:${cluster.endpoint.port}`);
    this.decide({
      verdict: 'direct',
      exit: 'gateway',
      upstream: `${cluster.endpoint.ip}:${cluster.endpoint.port}`,
    });
    if (this.input.lab.proxy && cluster.endpoint.ip === this.input.lab.proxy.ip) {
      return this.reset('gateway: raw TLS to the proxy without a CONNECT (no tunneling_config)');
    }
    return this.reach({ ...cluster.endpoint, serverHost: this.host }, 'direct');
  }

  /** A cluster istiod generates for `outbound|port|subset|host`, as the proxy in `proxyNs` sees it. */
  private generatedCluster(name: string, proxyNs: string): ClusterTarget | undefined {
    const parts = name.split('|');
    if (parts.length !== 4 || parts[0] !== 'outbound') return undefined;
    const [, portText, subset, host] = parts as [string, string, string, string];
    const port = Number(portText);
    const service = this.registry.find((s) => s.host === host && visible(s.exportTo, s.namespace, proxyNs));
    if (!service || !service.ports.some((p) => p.number === port)) return undefined;
    if (subset && !subsetDefined(this.input.resources, service, subset, proxyNs)) return undefined;
    const policy = trafficPolicy(this.input.resources, service, subset || undefined, port, proxyNs);
    const tunnel = obj(policy?.tunnel);
    const protocol = service.ports.find((p) => p.number === port)?.protocol ?? '';
    return {
      name,
      endpoint: serviceEndpoint(service, port),
      tls: ['SIMPLE', 'MUTUAL', 'ISTIO_MUTUAL'].includes(text(obj(policy?.tls).mode)),
      http2: ['HTTP2', 'GRPC'].includes(protocol),
      tunnel: text(tunnel.targetHost)
        ? {
            hostname: `${text(tunnel.targetHost)}:${text(tunnel.targetPort)}`,
            usePost: text(tunnel.protocol) === 'POST',
          }
        : undefined,
    };
  }

  /** Stage 6: a CONNECT (or POST) tunnel through a cluster's endpoint. */
  private tunnelThrough(
    cluster: ClusterTarget,
    authority: string,
    usePost: boolean,
    exit: 'sidecar' | 'gateway',
  ): MeshOutcome {
    const method = usePost ? 'POST' : 'CONNECT';
    const protocol = cluster.http2 ? 'HTTP/2' : 'HTTP/1.1';
    const proxy = cluster.endpoint;
    this.decide({
      verdict: 'tunnel',
      exit,
      proxy: proxy ? `${proxy.ip}:${proxy.port}` : undefined,
      authority,
      method,
      protocol,
      proxyTls: cluster.tls,
    });
    const lab = this.input.lab.proxy;
    if (!proxy) return this.reset(`tunnel: cluster ${cluster.name} has no endpoint`);
    if (!lab || proxy.ip !== lab.ip || proxy.port !== lab.port) {
      return this.reset(
        `tunnel: ${proxy.ip}:${proxy.port} is not the lab's proxy${lab ? ` (${lab.ip}:${lab.port})` : ''}; the upstream connection fails`,
      );
    }
    if (!cluster.tls) {
      return this.reset(
        'tunnel: plain text to the proxy, which only speaks TLS on its port; handshake fails, nothing logged',
      );
    }
    if (method !== 'CONNECT') return this.reset(`tunnel: the proxy routes only CONNECT, not ${method}`);
    if (protocol !== 'HTTP/1.1')
      return this.reset(`tunnel: the proxy speaks HTTP/1.1 CONNECT, not ${protocol}`);
    const [targetHost, targetPortText] = splitHostPort(authority);
    const targetIp = isIp(targetHost) ? targetHost : publicAddress(targetHost);
    if (!targetIp) return this.reset(`tunnel: the proxy cannot resolve ${targetHost}`);
    const targetPort = Number(targetPortText ?? 443);
    const line = (flags: string, type: string) =>
      `[${this.input.now.toISOString()}] ${this.input.lab.nodeIp}:${this.input.sourcePort} "${method} ${targetIp}:${targetPort} - ${protocol}" - 200 - ${flags} ${authority} ${type}`;
    this.logs.push(line('-', 'DownstreamTunnelSuccessfullyEstablished'), line('DC', 'DownstreamEnd'));
    this.tunnelRequest = { authority };
    this.note(
      `tunnel: ${method} ${authority} through ${proxy.ip}:${proxy.port} (${protocol}); 2 access-log lines`,
    );
    return this.reach({ ip: targetIp, port: targetPort, serverHost: targetHost }, 'tunnel');
  }

  private toService(service: RegistryService, servicePort: number, exit: 'sidecar' | 'gateway'): MeshOutcome {
    if (service.kind === 'Service') {
      const endpoint = service.endpoints[0];
      const svcPort = service.ports.find((p) => p.number === servicePort);
      if (!endpoint) return this.failed(exit, `cluster of ${service.host} has no endpoints`);
      const upstream = { ip: endpoint.address, port: endpoint.port ?? svcPort?.targetPort ?? servicePort };
      this.decide({ verdict: 'direct', exit, upstream: `${upstream.ip}:${upstream.port}` });
      return this.reach({ ...upstream, serverHost: service.host }, 'direct');
    }
    if (service.resolution === 'NONE') {
      this.decide({ verdict: 'direct', exit, upstream: `${this.remoteIp}:${this.port}` });
      return this.reach({ ip: this.remoteIp ?? '', port: this.port, serverHost: this.host }, 'direct');
    }
    const endpoint = service.endpoints[0];
    const address = endpoint?.address ?? service.host;
    const ip = isIp(address) ? address : (publicAddress(address) ?? '');
    const targetPort =
      endpoint?.port ?? service.ports.find((p) => p.number === servicePort)?.targetPort ?? servicePort;
    this.decide({ verdict: 'direct', exit, upstream: `${address}:${targetPort}` });
    return this.reach({ ip, port: targetPort, serverHost: isIp(address) ? this.host : address }, 'direct');
  }

  /** Stage 7: who answers at `target`. */
  private reach(target: Target, via: 'direct' | 'tunnel'): MeshOutcome {
    let { ip, port: targetPort } = target;
    const service = this.registry.find((s) => s.clusterIp === ip);
    if (service) {
      // kube-proxy sends ClusterIP traffic to one of the Service's endpoints.
      const endpoint = service.endpoints[0];
      if (!endpoint) {
        return this.fail(
          7,
          `Failed to connect to ${this.host} port ${this.port} after 0 ms: Couldn't connect to server`,
          `kube-proxy: Service ${service.host} has no endpoints`,
        );
      }
      const svcPort = service.ports.find((p) => p.number === targetPort);
      ip = endpoint.address;
      targetPort = endpoint.port ?? svcPort?.targetPort ?? targetPort;
    }
    const app = this.input.lab.app;
    if (app && ip === app.ip && targetPort === app.port) {
      this.note(`server: the lab's app at ${ip}:${targetPort} (${via})`);
      return this.finish({ exitCode: 0, httpCode: 0, appRequest: { host: this.host, port: this.port, via } });
    }
    if (isPrivate(ip)) {
      return this.fail(
        28,
        `Connection timed out after ${10_000} milliseconds`,
        `server: nothing answers at ${ip}:${targetPort}`,
      );
    }
    if (this.tls && target.serverHost !== this.host && !this.input.request.insecure) {
      return this.fail(
        60,
        `SSL: no alternative certificate subject name matches target host name '${this.host}'`,
        `server: ${ip} presents the certificate of ${target.serverHost}, not ${this.host}`,
      );
    }
    this.note(`server: ${target.serverHost} (${ip}:${targetPort}) answers 200 (${via})`);
    return this.finish({ exitCode: 0, httpCode: 200 });
  }

  private note(line: string): void {
    this.trace.push(line);
  }

  /** Records where the mesh sends the connection; the first decision stands. */
  private decide(verdict: Omit<MeshVerdict, 'host' | 'port' | 'path'>): void {
    this.verdict ??= verdict;
  }

  /** The connection fails inside the mesh (`proxyRole` closes it). */
  private failed(proxyRole: 'sidecar' | 'gateway', reason: string): MeshOutcome {
    this.decide({ verdict: 'fail', reason: `${proxyRole}: ${reason}` });
    return this.reset(`${proxyRole}: ${reason}`);
  }

  private reset(why: string): MeshOutcome {
    return this.fail(35, 'Recv failure: Connection reset by peer', why);
  }

  private fail(exitCode: number, error: string, why: string): MeshOutcome {
    this.note(why);
    this.decide({ verdict: 'fail', reason: why });
    return this.finish({ exitCode, httpCode: 0, error });
  }

  private finish(result: Pick<MeshOutcome, 'exitCode' | 'httpCode' | 'error' | 'appRequest'>): MeshOutcome {
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

const TCP_PROXY_TYPE = 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';

/**
 * The TCP listeners a proxy holds, as `istioctl proxy-config listeners -o json` prints them (Envoy's
 * JSON, camelCase), as far as the model builds them: the gateway's from its Gateway servers and
 * EnvoyFilters (none while Envoy would reject them), the sidecar's 0.0.0.0 listeners of ServiceEntry
 * ports.
 */
export function proxyListeners(
  input: Pick<MeshInput, 'resources' | 'istio'>,
  proxy:
    | { gateway: { namespace: string; labels: Record<string, string> } }
    | { sidecar: { pod: string; namespace: string } },
): Obj[] {
  const registry = buildRegistry(input.resources);
  const out: Obj[] = [];
  const tcpFilter = (config: Obj | undefined) => ({
    name: 'envoy.filters.network.tcp_proxy',
    typedConfig: { '@type': TCP_PROXY_TYPE, ...(camelKeys(config ?? {}) as Obj) },
  });
  if ('gateway' in proxy) {
    const services = registry.filter((s) => {
      const gw = gatewayOf(s, input);
      // The pod carries its Deployment template's labels, and more (pod-template-hash).
      return (
        gw &&
        gw.namespace === proxy.gateway.namespace &&
        Object.entries(gw.labels).every(([k, v]) => proxy.gateway.labels[k] === v)
      );
    });
    for (const service of services) {
      const gw = gatewayOf(service, input)!;
      for (const p of service.ports) {
        const built = gatewayListeners(input.resources, registry, gw, p.number, p.targetPort ?? p.number);
        if (built.nacks.length > 0) continue;
        for (const l of built.listeners) {
          out.push({
            name: l.name,
            address: { socketAddress: { address: '0.0.0.0', portValue: p.targetPort ?? p.number } },
            filterChains: l.chains.map((c) => ({
              filterChainMatch: c.sni ? { serverNames: c.sni } : {},
              filters: [tcpFilter(c.tcpProxy)],
            })),
          });
        }
      }
    }
    return out;
  }
  const ports = new Set(
    registry
      .filter((s) => s.kind === 'ServiceEntry' && s.addresses.length === 0)
      .flatMap((s) => s.ports.map((p) => p.number)),
  );
  for (const port of [...ports].sort((a, b) => a - b)) {
    const built = sidecarListener(registry, input.resources, proxy.sidecar, '0.0.0.0', port);
    if (built.chains.length === 0) continue;
    out.push({
      name: `0.0.0.0_${port}`,
      address: { socketAddress: { address: '0.0.0.0', portValue: port } },
      filterChains: built.chains.map((c) => {
        const cluster = c.route
          ? `outbound|${c.route.port ?? port}|${c.route.subset ?? ''}|${qualify(c.route.host, c.route.namespace)}`
          : `outbound|${port}||${c.service.host}`;
        return {
          filterChainMatch: c.sni ? { serverNames: c.sni } : {},
          filters: [tcpFilter({ stat_prefix: cluster, cluster })],
        };
      }),
    });
  }
  return out;
}

function camelKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(camelKeys);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [
        k.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase()),
        camelKeys(v),
      ]),
    );
  }
  return value;
}

/** istiod's push status for the sidecars of `proxies` (conflicts of each one's listeners on `ports`). */
export function pushStatusOf(
  resources: MeshObject[],
  proxies: { pod: string; namespace: string }[],
  ports: number[] = [443],
): PushStatus {
  const registry = buildRegistry(resources);
  const status: PushStatus = {};
  for (const proxy of proxies) {
    for (const port of ports) {
      const built = sidecarListener(registry, resources, proxy, '0.0.0.0', port);
      for (const [metric, entries] of Object.entries(built.pushStatus)) {
        status[metric] = { ...(status[metric] ?? {}), ...entries };
      }
    }
  }
  return status;
}

/** The NACKs of every gateway's listeners on every Service port, whether a probe reached them or not. */
function gatewayConfigNacks(input: Omit<MeshInput, 'request'>): string[] {
  const registry = buildRegistry(input.resources);
  const out: string[] = [];
  for (const service of registry) {
    const gw = gatewayOf(service, input);
    if (!gw) continue;
    for (const p of service.ports) {
      const built = gatewayListeners(input.resources, registry, gw, p.number, p.targetPort ?? p.number);
      for (const n of built.nacks) if (!out.includes(n)) out.push(n);
    }
  }
  return out;
}

/**
 * The sidecar's outbound filter chains on `listenerIp:port`, in Istio's order (services by creation
 * time, then host name), with the conflicts istiod records when two chains have the same match.
 */
function sidecarListener(
  registry: RegistryService[],
  resources: MeshObject[],
  source: { pod: string; namespace: string },
  listenerIp: string,
  port: number,
): { chains: Chain[]; conflicts: string[]; pushStatus: PushStatus } {
  const services = registry.filter(
    (s) =>
      visible(s.exportTo, s.namespace, source.namespace) &&
      s.ports.some((p) => p.number === port && !['HTTP', 'HTTP2', 'GRPC'].includes(p.protocol)) &&
      (listenerIp === '0.0.0.0'
        ? s.kind === 'ServiceEntry' && s.addresses.length === 0
        : s.clusterIp === listenerIp),
  );
  const chains: Chain[] = [];
  const conflicts: string[] = [];
  const pushStatus: PushStatus = {};
  const listener = `${listenerIp}_${port}`;
  for (const service of services) {
    for (const chain of chainsFor(service, resources, source.namespace, port)) {
      const clash = chains.find((c) => sameMatch(c.sni, chain.sni));
      if (clash) {
        // istiod's wording: TLS services show as TCP, the rejected host in parentheses.
        const message = `Listener=${listener} Accepted=TCP Rejected=TCP (${service.host})`;
        conflicts.push(message);
        pushStatus[CONFLICT_TCP_OVER_TCP] = {
          ...(pushStatus[CONFLICT_TCP_OVER_TCP] ?? {}),
          [listener]: { proxy: `${source.pod}.${source.namespace}`, message },
        };
        continue;
      }
      chains.push(chain);
    }
  }
  return { chains, conflicts, pushStatus };
}

/** A service's chains: one per TLS match (and `tcp` route) of the VirtualService bound to it, else its own. */
function chainsFor(
  service: RegistryService,
  resources: MeshObject[],
  sourceNs: string,
  port: number,
): Chain[] {
  // For sidecars only the oldest VirtualService of a host is used.
  const vs = resources.find((r) => {
    if (r.kind !== 'VirtualService') return false;
    const spec = obj(r.spec);
    const ns = r.metadata.namespace ?? 'default';
    const gateways = list(spec.gateways).map(String);
    return (
      visible(spec.exportTo as string[] | undefined, ns, sourceNs) &&
      (gateways.length === 0 || gateways.includes('mesh')) &&
      list(spec.hosts).some((h) => hostMatches(qualify(text(h), ns), service.host))
    );
  });
  const chains: Chain[] = [];
  if (vs) {
    const spec = obj(vs.spec);
    const ns = vs.metadata.namespace ?? 'default';
    const vsGateways = list(spec.gateways).map(String);
    const forMesh = (m: Obj) => {
      const gateways = m.gateways === undefined ? vsGateways : list(m.gateways).map(String);
      return gateways.length === 0 || gateways.includes('mesh');
    };
    for (const route of list(spec.tls)) {
      const dest = heaviest(route, ns);
      for (const m of list(route.match)) {
        if (!forMesh(m) || (m.port !== undefined && m.port !== port)) continue;
        chains.push({
          sni: list(m.sniHosts).map(String),
          service,
          route: dest,
          origin: `VirtualService ${vs.metadata.name}`,
        });
      }
    }
    for (const route of list(spec.tcp)) {
      const matches = list(route.match);
      if (matches.length > 0 && !matches.some((m) => forMesh(m) && (m.port === undefined || m.port === port)))
        continue;
      chains.push({
        sni: null,
        service,
        route: heaviest(route, ns),
        origin: `VirtualService ${vs.metadata.name} (tcp)`,
      });
    }
  }
  if (chains.length > 0) return chains;
  const protocol = service.ports.find((p) => p.number === port)?.protocol;
  const sni = protocol === 'TLS' || protocol === 'HTTPS' ? [service.host] : null;
  return [{ sni, service, origin: `${service.kind} ${service.host}` }];
}

/**
 * The egress gateway's listeners on `targetPort`: the one istiod generates from Gateway servers on the
 * Service port (only when a TLS route binds to them), then EnvoyFilter ADDs; and why Envoy would NACK them.
 */
function gatewayListeners(
  resources: MeshObject[],
  registry: RegistryService[],
  gw: GatewayIdentity,
  servicePort: number,
  targetPort: number,
): { listeners: GatewayListener[]; nacks: string[] } {
  const listeners: GatewayListener[] = [];
  const patches = networkFilterPatches(resources, gw, targetPort);
  const chains = passthroughChains(resources, registry, gw, servicePort).map((c) => ({
    ...c,
    tcpProxy: patchTcpProxy(c.tcpProxy, c.sni, patches),
  }));
  if (chains.length > 0) {
    listeners.push({ name: `0.0.0.0_${targetPort}`, origin: 'Gateway servers', chains });
  }
  for (const value of envoyFilterValues(resources, gw, 'LISTENER')) {
    if (socketPort(value) !== targetPort) continue;
    listeners.push({
      name: text(value.name),
      origin: 'EnvoyFilter ADD',
      chains: list(field(value, 'filter_chains')).map((fc) => ({
        sni: (field(obj(field(fc, 'filter_chain_match')), 'server_names') as string[] | undefined) ?? null,
        tcpProxy: tcpProxyOf(fc),
        origin: 'EnvoyFilter',
      })),
    });
  }
  const nacks: string[] = [];
  const seen = new Set<string>();
  for (const l of listeners) {
    if (seen.has(l.name)) nacks.push(`LDS: duplicate listener ${l.name} found`);
    seen.add(l.name);
    for (const [i, c] of l.chains.entries()) {
      if (!c.tcpProxy) continue;
      // Envoy's field rules for TcpProxy: stat_prefix has at least one byte; a cluster specifier is required.
      const where = `LDS: listener ${l.name}: filter_chains[${i}] tcp_proxy`;
      if (!text(field(c.tcpProxy, 'stat_prefix'))) nacks.push(`${where}: stat_prefix is required`);
      if (
        !text(c.tcpProxy.cluster) &&
        list(field(obj(field(c.tcpProxy, 'weighted_clusters')), 'clusters')).length === 0
      )
        nacks.push(`${where}: ClusterSpecifier is required`);
    }
  }
  return { listeners, nacks };
}

/** istiod's filter chains for PASSTHROUGH Gateway servers on `servicePort`, one per bound TLS route match. */
function passthroughChains(
  resources: MeshObject[],
  registry: RegistryService[],
  gw: GatewayIdentity,
  servicePort: number,
): { sni: string[]; tcpProxy: Obj; origin: string }[] {
  const chains: { sni: string[]; tcpProxy: Obj; origin: string }[] = [];
  for (const gateway of resources.filter((r) => r.kind === 'Gateway')) {
    const selector = (obj(gateway.spec).selector ?? {}) as Record<string, string>;
    if (Object.keys(selector).length === 0 || !Object.entries(selector).every(([k, v]) => gw.labels[k] === v))
      continue;
    const gwNs = gateway.metadata.namespace ?? 'default';
    for (const server of list(obj(gateway.spec).servers)) {
      if (Number(obj(server.port).number) !== servicePort || text(obj(server.tls).mode) !== 'PASSTHROUGH')
        continue;
      const hosts = list(server.hosts).map((h) => text(h));
      for (const vs of resources.filter((r) => r.kind === 'VirtualService')) {
        const spec = obj(vs.spec);
        const vsNs = vs.metadata.namespace ?? 'default';
        const bound = (names: unknown) =>
          list(names).some((g) => {
            const ref = text(g);
            return (
              ref === `${gwNs}/${gateway.metadata.name}` || (ref === gateway.metadata.name && vsNs === gwNs)
            );
          });
        if (!bound(spec.gateways)) continue;
        // A server host `ns/name` admits VirtualServices of namespace ns only; `./name` the Gateway's own.
        const admitted = list(spec.hosts).filter((h) =>
          hosts.some((sh) => {
            const [ns, name] = sh.includes('/') ? (sh.split('/', 2) as [string, string]) : ['*', sh];
            const nsOk = ns === '*' || (ns === '.' ? vsNs === gwNs : ns === vsNs);
            return nsOk && (hostMatches(name, text(h)) || hostMatches(text(h), name));
          }),
        );
        if (admitted.length === 0) continue;
        for (const route of list(spec.tls)) {
          const dest = heaviest(route, vsNs);
          if (!dest) continue;
          for (const m of list(route.match)) {
            if (
              (m.port !== undefined && m.port !== servicePort) ||
              (m.gateways !== undefined && !bound(m.gateways))
            )
              continue;
            const sni = list(m.sniHosts)
              .map((s) => text(s))
              .filter((s) => admitted.some((h) => hostMatches(text(h), s) || hostMatches(s, text(h))));
            if (sni.length === 0) continue;
            const fqdn = qualify(dest.host, dest.namespace);
            const service = registry.find(
              (s) => s.host === fqdn && visible(s.exportTo, s.namespace, gw.namespace),
            );
            const port = dest.port ?? (service?.ports.length === 1 ? service.ports[0]!.number : undefined);
            const cluster = `outbound|${port ?? ''}|${dest.subset ?? ''}|${fqdn}`;
            const tcpProxy: Obj = { stat_prefix: cluster, cluster };
            const policy = service
              ? trafficPolicy(resources, service, dest.subset, port, gw.namespace)
              : undefined;
            const tunnel = obj(policy?.tunnel);
            if (
              text(tunnel.targetHost) &&
              (!dest.subset || (service && subsetDefined(resources, service, dest.subset, gw.namespace)))
            ) {
              tcpProxy.tunneling_config = {
                hostname: `${text(tunnel.targetHost)}:${text(tunnel.targetPort)}`,
                ...(text(tunnel.protocol) === 'POST' ? { use_post: true } : {}),
              };
            }
            chains.push({
              sni,
              tcpProxy,
              origin: `Gateway ${gateway.metadata.name}, VirtualService ${vs.metadata.name}`,
            });
          }
        }
      }
    }
  }
  return chains;
}

interface NetworkFilterPatch {
  operation: 'MERGE' | 'REPLACE';
  sni?: string;
  value: Obj;
}

/** EnvoyFilter NETWORK_FILTER patches of the gateway's tcp_proxy on `targetPort`. */
function networkFilterPatches(
  resources: MeshObject[],
  gw: GatewayIdentity,
  targetPort: number,
): NetworkFilterPatch[] {
  const out: NetworkFilterPatch[] = [];
  for (const patch of envoyFilterPatches(resources, gw)) {
    if (patch.applyTo !== 'NETWORK_FILTER') continue;
    const operation = text(obj(patch.patch).operation);
    if (operation !== 'MERGE' && operation !== 'REPLACE') continue;
    const listener = obj(obj(patch.match).listener);
    if (listener.portNumber !== undefined && Number(listener.portNumber) !== targetPort) continue;
    const chain = obj(listener.filterChain);
    const filterName = text(obj(chain.filter).name);
    if (filterName && filterName !== 'envoy.filters.network.tcp_proxy') continue;
    out.push({ operation, sni: text(chain.sni) || undefined, value: obj(obj(patch.patch).value) });
  }
  return out;
}

/** A generated tcp_proxy after the patches that match its chain (MERGE merges fields, REPLACE swaps). */
function patchTcpProxy(tcpProxy: Obj, sni: string[], patches: NetworkFilterPatch[]): Obj {
  let out = tcpProxy;
  for (const p of patches) {
    if (p.sni && !sni.includes(p.sni)) continue;
    const typed = obj(field(p.value, 'typed_config'));
    const fields = Object.fromEntries(Object.entries(typed).filter(([k]) => k !== '@type'));
    out = p.operation === 'REPLACE' ? fields : deepMerge(out, fields);
  }
  return out;
}

function deepMerge(base: Obj, patch: Obj): Obj {
  const out: Obj = { ...base };
  for (const [k, v] of Object.entries(patch)) {
    const key = k in base ? k : snake(k);
    out[key] = v && typeof v === 'object' && !Array.isArray(v) ? deepMerge(obj(base[key]), v as Obj) : v;
  }
  return out;
}

/** The tcp_proxy config of an EnvoyFilter filter chain. */
function tcpProxyOf(fc: Obj): Obj | undefined {
  const filter = list(fc.filters).find(
    (f) =>
      f.name === 'envoy.filters.network.tcp_proxy' ||
      text(field(obj(field(f, 'typed_config')), '@type')).endsWith('TcpProxy'),
  );
  return filter ? obj(field(filter, 'typed_config')) : undefined;
}

/** EnvoyFilter CLUSTER ADDs that apply to the gateway, as clusters. */
function addedClusters(resources: MeshObject[], gw: GatewayIdentity): ClusterTarget[] {
  return envoyFilterValues(resources, gw, 'CLUSTER').map((c) => {
    const transport = obj(field(c, 'transport_socket'));
    return {
      name: text(c.name),
      endpoint: clusterEndpoint(c),
      tls:
        transport.name === 'envoy.transport_sockets.tls' ||
        text(field(obj(field(transport, 'typed_config')), '@type')).endsWith('UpstreamTlsContext'),
      http2:
        field(c, 'http2_protocol_options') !== undefined ||
        JSON.stringify(field(c, 'typed_extension_protocol_options') ?? {}).includes('http2_protocol_options'),
    };
  });
}

/** The config patches of the EnvoyFilters that apply to a gateway (context GATEWAY or ANY). */
function envoyFilterPatches(resources: MeshObject[], gw: GatewayIdentity): Obj[] {
  const out: Obj[] = [];
  for (const ef of resources.filter((r) => r.kind === 'EnvoyFilter')) {
    const spec = obj(ef.spec);
    const selector = obj(spec.workloadSelector).labels as Record<string, string> | undefined;
    const ns = ef.metadata.namespace ?? 'default';
    // A workloadSelector matches pods of its own namespace; the root namespace's filters apply everywhere.
    const inScope = ns === gw.namespace || ns === ROOT_NAMESPACE;
    if (!inScope || (selector && !Object.entries(selector).every(([k, v]) => gw.labels[k] === v))) continue;
    for (const patch of list(spec.configPatches)) {
      if (['ANY', 'GATEWAY'].includes(text(obj(patch.match).context || 'ANY'))) out.push(patch);
    }
  }
  return out;
}

/** Values of the ADD patches of one kind (LISTENER or CLUSTER) that apply to a gateway. */
function envoyFilterValues(resources: MeshObject[], gw: GatewayIdentity, applyTo: string): Obj[] {
  return envoyFilterPatches(resources, gw)
    .filter((p) => p.applyTo === applyTo && obj(p.patch).operation === 'ADD')
    .map((p) => obj(obj(p.patch).value));
}

/** Envoy's filter chain selection by SNI: exact name, then the longest wildcard, then a chain without match. */
function pickChain<T>(
  chains: { sni: string[] | null; value: T }[],
  host: string,
): { sni: string[] | null; value: T } | undefined {
  const exact = chains.find((c) => c.sni?.includes(host));
  if (exact) return exact;
  const wildcard = chains
    .flatMap((c) =>
      (c.sni ?? [])
        .filter((s) => s.startsWith('*.') && host.endsWith(s.slice(1)))
        .map((s) => ({ c, len: s.length })),
    )
    .sort((a, b) => b.len - a.len)[0];
  if (wildcard) return wildcard.c;
  return chains.find((c) => c.sni === null || c.sni.length === 0);
}

function sameMatch(a: string[] | null, b: string[] | null): boolean {
  if (a === null || b === null) return a === b;
  return a.length === b.length && a.every((s, i) => s === b[i]);
}

function buildRegistry(resources: MeshObject[]): RegistryService[] {
  const services: RegistryService[] = [];
  for (const r of resources) {
    const spec = obj(r.spec);
    const ns = r.metadata.namespace ?? 'default';
    if (r.kind === 'ServiceEntry') {
      const ports = list(spec.ports).map((p) => ({
        number: Number(p.number),
        protocol: text(p.protocol ?? 'TCP').toUpperCase(),
        name: text(p.name ?? ''),
        targetPort: p.targetPort === undefined ? undefined : Number(p.targetPort),
      }));
      const endpoints = list(spec.endpoints).map((e) => {
        const first = Object.values(obj(e.ports))[0];
        return { address: text(e.address), port: first === undefined ? undefined : Number(first) };
      });
      for (const h of list(spec.hosts)) {
        services.push({
          host: text(h),
          namespace: ns,
          kind: 'ServiceEntry',
          ports,
          addresses: list(spec.addresses).map(String),
          resolution: text(spec.resolution ?? 'NONE'),
          endpoints,
          exportTo: spec.exportTo as string[] | undefined,
        });
      }
    } else if (r.kind === 'Service') {
      const name = r.metadata.name;
      const ports = list(spec.ports).map((p) => ({
        number: Number(p.port),
        protocol: portProtocol(p),
        name: text(p.name ?? ''),
        targetPort: typeof p.targetPort === 'number' ? p.targetPort : Number(p.port),
      }));
      const endpoints: { address: string; port?: number }[] = [];
      for (const slice of resources.filter(
        (x) =>
          x.kind === 'EndpointSlice' &&
          x.metadata.namespace === ns &&
          x.metadata.labels?.['kubernetes.io/service-name'] === name,
      )) {
        const slicePort = list(slice.ports)[0]?.port;
        for (const e of list(slice.endpoints)) {
          for (const address of list(e.addresses))
            endpoints.push({
              address: text(address),
              port: slicePort === undefined ? undefined : Number(slicePort),
            });
        }
      }
      const legacy = resources.find(
        (x) => x.kind === 'Endpoints' && x.metadata.namespace === ns && x.metadata.name === name,
      );
      for (const subset of list(legacy?.subsets)) {
        const subsetPort = list(subset.ports)[0]?.port;
        for (const a of list(subset.addresses))
          endpoints.push({
            address: text(a.ip),
            port: subsetPort === undefined ? undefined : Number(subsetPort),
          });
      }
      services.push({
        host: `${name}.${ns}.svc.cluster.local`,
        namespace: ns,
        kind: 'Service',
        ports,
        addresses: [],
        resolution: 'STATIC',
        endpoints,
        clusterIp: typeof spec.clusterIP === 'string' ? spec.clusterIP : undefined,
        selector: spec.selector as Record<string, string> | undefined,
      });
    }
  }
  return services;
}

/** Istio's protocol selection for a Kubernetes Service port: appProtocol, then the port name's prefix. */
function portProtocol(port: Obj): string {
  const declared = text(port.appProtocol ?? text(port.name ?? '').split('-')[0]).toUpperCase();
  return ['HTTP', 'HTTPS', 'HTTP2', 'GRPC', 'TLS', 'TCP', 'MONGO', 'REDIS', 'MYSQL'].includes(declared)
    ? declared
    : 'TCP';
}

function resolveInPod(
  host: string,
  namespace: string,
  registry: RegistryService[],
): { ip: string; service?: RegistryService } | undefined {
  if (isIp(host)) return { ip: host };
  const parts = host.split('.');
  const candidates = host.endsWith('.svc.cluster.local')
    ? [host]
    : host.endsWith('.svc')
      ? [`${host}.cluster.local`]
      : parts.length === 1
        ? [`${host}.${namespace}.svc.cluster.local`]
        : parts.length === 2
          ? [`${host}.svc.cluster.local`]
          : [];
  for (const candidate of candidates) {
    const service = registry.find((s) => s.kind === 'Service' && s.host === candidate);
    if (service?.clusterIp) return { ip: service.clusterIp, service };
  }
  if (host.endsWith('.cluster.local') || parts.length < 3) return undefined;
  const ip = publicAddress(host);
  return ip ? { ip } : undefined;
}

/** The public DNS of the sim: the PoC's addresses, else a stable address in 203.0.113.0/24. */
export function publicAddress(host: string): string | undefined {
  if (PUBLIC_DNS[host]) return PUBLIC_DNS[host];
  if (
    host.endsWith('.cluster.local') ||
    host.endsWith('.local') ||
    host.endsWith('.invalid') ||
    !host.includes('.')
  )
    return undefined;
  let sum = 0;
  for (const ch of host) sum = (sum * 31 + ch.charCodeAt(0)) % 65_521;
  return `203.0.113.${1 + (sum % 254)}`;
}

/** The gateway whose pods a Service selects: one of the installation's gateway Deployments. */
function gatewayOf(
  service: RegistryService,
  input: Pick<MeshInput, 'resources' | 'istio'>,
): GatewayIdentity | undefined {
  if (service.kind !== 'Service' || !service.selector || Object.keys(service.selector).length === 0)
    return undefined;
  const gateways = input.istio?.gateways ?? DEMO_GATEWAYS;
  for (const d of input.resources) {
    if (d.kind !== 'Deployment' || d.metadata.namespace !== service.namespace) continue;
    if (!gateways.includes(`${d.metadata.namespace}/${d.metadata.name}`)) continue;
    const labels = (obj(obj(obj(d.spec).template).metadata).labels ?? {}) as Record<string, string>;
    if (Object.entries(service.selector).every(([k, v]) => labels[k] === v)) {
      return { namespace: service.namespace, labels };
    }
  }
  return undefined;
}

function socketPort(listener: Obj): number {
  return Number(field(obj(field(obj(listener.address), 'socket_address')), 'port_value'));
}

function clusterEndpoint(cluster: Obj): { ip: string; port: number } | undefined {
  const assignment = obj(field(cluster, 'load_assignment'));
  const lb = list(field(list(assignment.endpoints)[0] ?? {}, 'lb_endpoints'))[0];
  const socket = obj(field(obj(obj(obj(lb).endpoint).address), 'socket_address'));
  if (!socket.address) return undefined;
  const address = text(socket.address);
  return {
    ip: isIp(address) ? address : (publicAddress(address) ?? address),
    port: Number(field(socket, 'port_value')),
  };
}

function serviceEndpoint(
  service: RegistryService,
  port: number | undefined,
): { ip: string; port: number } | undefined {
  const svcPort = service.ports.find((p) => p.number === port);
  const endpoint = service.endpoints[0];
  if (service.kind === 'Service') {
    return endpoint
      ? { ip: endpoint.address, port: endpoint.port ?? svcPort?.targetPort ?? port ?? 0 }
      : undefined;
  }
  const address = endpoint?.address ?? service.host;
  const ip = isIp(address) ? address : publicAddress(address);
  return ip ? { ip, port: endpoint?.port ?? svcPort?.targetPort ?? port ?? 0 } : undefined;
}

/**
 * The DestinationRule a proxy in `proxyNs` uses for a service, in istiod's order: a rule in the proxy's
 * own namespace; else one in the service's namespace exported to the proxy; else one in the root
 * namespace exported to it. Exact hosts win over wildcards, older rules over newer ones.
 */
function destinationRule(
  resources: MeshObject[],
  service: RegistryService,
  proxyNs: string,
): MeshObject | undefined {
  const rules = resources.filter((r) => {
    if (r.kind !== 'DestinationRule') return false;
    const host = qualify(text(obj(r.spec).host), r.metadata.namespace ?? 'default');
    return hostMatches(host, service.host);
  });
  const best = (candidates: MeshObject[]) =>
    candidates.find(
      (r) => qualify(text(obj(r.spec).host), r.metadata.namespace ?? 'default') === service.host,
    ) ?? candidates[0];
  const exported = (r: MeshObject) =>
    visible(obj(r.spec).exportTo as string[] | undefined, r.metadata.namespace ?? 'default', proxyNs);
  return (
    best(rules.filter((r) => (r.metadata.namespace ?? 'default') === proxyNs)) ??
    best(rules.filter((r) => (r.metadata.namespace ?? 'default') === service.namespace && exported(r))) ??
    best(rules.filter((r) => r.metadata.namespace === ROOT_NAMESPACE && exported(r)))
  );
}

function subsetDefined(
  resources: MeshObject[],
  service: RegistryService,
  subset: string,
  proxyNs: string,
): boolean {
  const dr = destinationRule(resources, service, proxyNs);
  return list(obj(dr?.spec).subsets).some((s) => s.name === subset);
}

/** The DestinationRule policy for a destination: the subset's fields over the top-level ones. */
function trafficPolicy(
  resources: MeshObject[],
  service: RegistryService,
  subset: string | undefined,
  port: number | undefined,
  proxyNs: string,
): Obj | undefined {
  const dr = destinationRule(resources, service, proxyNs);
  if (!dr) return undefined;
  const spec = obj(dr.spec);
  const atPort = (policy: Obj | undefined): Obj | undefined => {
    const level = list(policy?.portLevelSettings).find((s) => Number(obj(s.port).number) === port);
    return level ?? policy;
  };
  const top = atPort(spec.trafficPolicy as Obj | undefined);
  const sub = subset
    ? atPort(list(spec.subsets).find((s) => s.name === subset)?.trafficPolicy as Obj | undefined)
    : undefined;
  if (!top && !sub) return undefined;
  return { ...(top ?? {}), ...(sub ?? {}) };
}

function heaviest(route: Obj, namespace: string): Destination | undefined {
  const routes = list(route.route).sort((a, b) => Number(b.weight ?? 100) - Number(a.weight ?? 100));
  const destination = obj(routes[0]?.destination);
  if (!destination.host) return undefined;
  const port = obj(destination.port).number;
  return {
    host: text(destination.host),
    port: port === undefined ? undefined : Number(port),
    subset: destination.subset === undefined ? undefined : text(destination.subset),
    namespace,
  };
}

/** Istio's short names: `name` and `name.ns` are Kubernetes Services of the config's namespace. */
function qualify(host: string, namespace: string): string {
  if (host.includes('*') || host.endsWith('.svc.cluster.local')) return host;
  const parts = host.split('.');
  if (parts.length === 1) return `${host}.${namespace}.svc.cluster.local`;
  if (parts.length === 2) return `${host}.svc.cluster.local`;
  return host;
}

function hostMatches(pattern: string, host: string): boolean {
  if (pattern === '*' || pattern === host) return true;
  return pattern.startsWith('*.') && host.endsWith(pattern.slice(1));
}

/** `exportTo`: absent or `*` is every namespace, `.` the config's own. */
function visible(exportTo: string[] | undefined, ownNs: string, sourceNs: string): boolean {
  if (!exportTo || exportTo.length === 0) return true;
  return exportTo.some((e) => e === '*' || e === sourceNs || (e === '.' && ownNs === sourceNs));
}

function splitHostPort(target: string): [string, string | undefined] {
  const at = target.lastIndexOf(':');
  return at === -1 ? [target, undefined] : [target.slice(0, at), target.slice(at + 1)];
}

function isIp(value: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(value) || value.includes(':');
}

function isPrivate(ip: string): boolean {
  return /^(10\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.|127\.)/.test(ip);
}

/** Envoy config in EnvoyFilters may use proto field names or their JSON (camelCase) form. */
function field(value: unknown, snakeName: string): unknown {
  const o = obj(value);
  if (snakeName in o) return o[snakeName];
  const camel = snakeName.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
  return o[camel];
}

function snake(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** A config value as text: strings and numbers as they are, anything else empty. */
function text(value: unknown): string {
  return typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean'
    ? String(value)
    : '';
}

function obj(value: unknown): Obj {
  return value && typeof value === 'object' && !Array.isArray(value) ? (value as Obj) : {};
}

function list(value: unknown): Obj[] {
  return Array.isArray(value) ? (value as Obj[]) : [];
}
