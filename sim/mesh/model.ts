/**
 * The simulated lab's mesh: a pure function from the cluster's objects, the Istio installation and one
 * curl from a pod to what curl sees, the external proxy's access-log lines and istiod's push status.
 *
 * The path a connection takes, step by step (each step cites the behaviour it reproduces):
 * 1. DNS. The pod's resolver knows cluster Services (kube-dns) and public names; Istio's DNS proxying is
 *    off by default, so ServiceEntry hosts are not resolved by the mesh.
 * 2. Interception. Without Istio, or in a pod without a sidecar (or from the istio-proxy container
 *    itself, UID 1337), the connection goes out directly.
 *    https://istio.io/latest/docs/ops/deployment/application-requirements/
 * 3. The sidecar's outbound listener for the destination port: one filter chain per registry service
 *    (ServiceEntry or Kubernetes Service) of that port, matched on SNI; a VirtualService bound to the
 *    service (gateway `mesh`) replaces its chain by one per TLS match (`sniHosts`). Two chains with the
 *    same match are a conflict: the later service's chain is dropped and istiod reports
 *    `pilot_conflict_outbound_listener_tcp_over_current_tcp` (Istio pilot/pkg/networking/core
 *    listener building; the PoC's TODO). No chain for the SNI: outboundTrafficPolicy decides,
 *    REGISTRY_ONLY resets the connection (curl exit 35), ALLOW_ANY passes it through.
 *    https://istio.io/latest/docs/tasks/traffic-management/egress/egress-control/
 *    https://istio.io/latest/docs/reference/config/networking/virtual-service/#TLSRoute
 * 4. The route's destination: the service itself (direct), the egress gateway, or a service whose
 *    DestinationRule has `trafficPolicy.tunnel` (Istio >= 1.15: CONNECT to targetHost:targetPort
 *    through that service, TLS to it when `tls.mode` is SIMPLE; subset policy merged over the
 *    top-level one field by field). https://istio.io/latest/docs/reference/config/networking/destination-rule/#TrafficPolicy-TunnelSettings
 * 5. The egress gateway's listener on the Service's target port (443 -> 8443): istiod makes one from
 *    Gateway servers on that port (TLS PASSTHROUGH chains need a VirtualService bound to the Gateway);
 *    an EnvoyFilter may ADD one (Istio appends ADDed listeners unchecked). Two listeners on one port
 *    make Envoy reject the listener update, so the port has none. An EnvoyFilter listener picks its
 *    filter chain by `server_names`; a tcp_proxy with `tunneling_config.hostname` opens a CONNECT
 *    tunnel over its cluster. https://istio.io/latest/docs/reference/config/networking/envoy-filter/
 *    https://www.envoyproxy.io/docs/envoy/latest/api-v3/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto
 * 6. The external proxy (envoy/envoy.yaml) accepts CONNECT over TLS only. It writes one access-log line
 *    when the tunnel is established (flush_log_on_tunnel_successfully_established, response flags `-`)
 *    and one when it closes (`DC`, the gateway ended it after curl finished).
 *    https://www.envoyproxy.io/docs/envoy/latest/intro/arch_overview/observability/access_logging#start-of-session-access-logs
 * 7. The server: a public host answers 200 (the sim never contacts the internet); the lab's app machine
 *    is answered by the real nginx (the caller runs a real curl for `appRequest`); a server that is
 *    not the requested host fails curl's certificate check (exit 60) unless `--insecure`.
 *
 * Not modelled: HTTP routes and `http` VirtualService rules (plain-HTTP requests follow the registry and
 * the outbound policy only), Sidecar resources, mTLS between proxies, weights (the heaviest route wins).
 */

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
  istio?: { outboundTrafficPolicy: 'ALLOW_ANY' | 'REGISTRY_ONLY' };
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
  /** Conflicts istiod reports for the source pod's proxy. */
  pushStatus: PushStatus;
  /** One line per decision, for the sim's trace log and for reviewers. */
  trace: string[];
}

export const CONFLICT_TCP_OVER_TCP = 'pilot_conflict_outbound_listener_tcp_over_current_tcp';

/** Public addresses of the PoC's hosts (from its access log); other public names get a TEST-NET-3 address. */
const PUBLIC_DNS: Record<string, string> = {
  'www.google.com': '216.58.209.4',
  'www.wikipedia.org': '91.198.174.192',
};

const EGRESS_LABELS = { istio: 'egressgateway' };

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

/** What curl sees for one request, and what the proxy logs; see the file comment for the rules. */
export function simulateRequest(input: MeshInput): MeshOutcome {
  const trace: string[] = [];
  const logs: string[] = [];
  let pushStatus: PushStatus = {};
  const url = new URL(input.request.url);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
  const tls = url.protocol === 'https:';
  const registry = buildRegistry(input.resources);
  const note = (line: string) => trace.push(line);
  const finish = (result: Omit<MeshOutcome, 'proxyLogLines' | 'trace' | 'pushStatus'>): MeshOutcome => ({
    ...result,
    proxyLogLines: logs,
    pushStatus,
    trace,
  });
  const fail = (exitCode: number, error: string, why: string, remoteIp?: string) => {
    note(why);
    return finish({ exitCode, httpCode: 0, error, remoteIp });
  };
  const reset = (why: string, remoteIp?: string) =>
    fail(35, 'Recv failure: Connection reset by peer', why, remoteIp);

  // Step 1: DNS.
  const resolved = resolveInPod(host, input.source.namespace, registry);
  if (!resolved) return fail(6, `Could not resolve host: ${host}`, `dns: ${host} does not resolve`);
  const remoteIp = resolved.ip;
  note(`dns: ${host} -> ${remoteIp}${resolved.service ? ` (Service ${resolved.service.host})` : ''}`);

  /** Step 7: who answers at `target`. */
  const reach = (target: Target, via: 'direct' | 'tunnel'): MeshOutcome => {
    let { ip, port: targetPort } = target;
    const service = registry.find((s) => s.clusterIp === ip);
    if (service) {
      // kube-proxy sends ClusterIP traffic to one of the Service's endpoints.
      const endpoint = service.endpoints[0];
      if (!endpoint) {
        return fail(
          7,
          `Failed to connect to ${host} port ${port} after 0 ms: Couldn't connect to server`,
          `kube-proxy: Service ${service.host} has no endpoints`,
          remoteIp,
        );
      }
      const svcPort = service.ports.find((p) => p.number === targetPort);
      ip = endpoint.address;
      targetPort = endpoint.port ?? svcPort?.targetPort ?? targetPort;
    }
    if (input.lab.app && ip === input.lab.app.ip && targetPort === input.lab.app.port) {
      note(`server: the lab's app at ${ip}:${targetPort} (${via})`);
      return finish({ exitCode: 0, httpCode: 0, remoteIp, appRequest: { host, port, via } });
    }
    if (isPrivate(ip)) {
      return fail(
        28,
        `Connection timed out after ${10_000} milliseconds`,
        `server: nothing answers at ${ip}:${targetPort}`,
        remoteIp,
      );
    }
    if (tls && target.serverHost !== host && !input.request.insecure) {
      return fail(
        60,
        `SSL: no alternative certificate subject name matches target host name '${host}'`,
        `server: ${ip} presents the certificate of ${target.serverHost}, not ${host}`,
        remoteIp,
      );
    }
    note(`server: ${target.serverHost} (${ip}:${targetPort}) answers 200 (${via})`);
    return finish({ exitCode: 0, httpCode: 200, remoteIp });
  };

  /** Step 6: a CONNECT tunnel through `proxy` to `target`. */
  const tunnel = (
    proxy: { ip: string; port: number },
    options: { tls: boolean; target: string; protocol: string; method: string },
  ) => {
    const lab = input.lab.proxy;
    if (!lab || proxy.ip !== lab.ip || proxy.port !== lab.port) {
      return reset(
        `tunnel: ${proxy.ip}:${proxy.port} is not the lab's proxy${lab ? ` (${lab.ip}:${lab.port})` : ''}; the upstream connection fails`,
        remoteIp,
      );
    }
    if (!options.tls)
      return reset(
        'tunnel: plain text to the proxy, which only speaks TLS on its port; handshake fails, nothing logged',
        remoteIp,
      );
    if (options.method !== 'CONNECT')
      return reset(`tunnel: the proxy routes only CONNECT, not ${options.method}`, remoteIp);
    const [targetHost, targetPortText] = splitHostPort(options.target);
    const targetIp = isIp(targetHost) ? targetHost : publicAddress(targetHost);
    if (!targetIp) return reset(`tunnel: the proxy cannot resolve ${targetHost}`, remoteIp);
    const targetPort = Number(targetPortText ?? 443);
    const line = (flags: string) =>
      `[${input.now.toISOString()}] ${input.lab.nodeIp}:${input.sourcePort} "${options.method} ${targetIp}:${targetPort} - ${options.protocol}" - 200 - ${flags} ${options.target}`;
    logs.push(line('-'), line('DC'));
    note(
      `tunnel: ${options.method} ${options.target} through ${proxy.ip}:${proxy.port} (${options.protocol}); 2 access-log lines`,
    );
    return reach({ ip: targetIp, port: targetPort, serverHost: targetHost }, 'tunnel');
  };

  /** Step 4: where a route's destination leads. */
  const follow = (dest: Destination, from: 'sidecar' | 'gateway', proxyNs: string): MeshOutcome => {
    const fqdn = qualify(dest.host, dest.namespace);
    // Config is visible to the proxy that routes: the pod's sidecar, or the gateway in its namespace.
    const service = registry.find((s) => s.host === fqdn && visible(s.exportTo, s.namespace, proxyNs));
    if (!service)
      return reset(`${from}: route to ${fqdn}, which is not in the registry (no cluster)`, remoteIp);
    const destPort = dest.port ?? (service.ports.length === 1 ? service.ports[0]!.number : undefined);
    if (isEgressGateway(service, input.resources)) {
      if (from === 'gateway') return reset('gateway: route back to the egress gateway', remoteIp);
      return egressGateway(service, destPort);
    }
    const policy = trafficPolicy(input.resources, service, dest.subset, destPort);
    const tunnelSettings = policy?.tunnel as Obj | undefined;
    if (tunnelSettings) {
      const endpoint = serviceEndpoint(service, destPort);
      if (!endpoint) return reset(`${from}: ${service.host} has no endpoint to tunnel through`, remoteIp);
      const portProtocol = service.ports.find((p) => p.number === destPort)?.protocol ?? '';
      note(
        `${from}: DestinationRule tunnel to ${text(tunnelSettings.targetHost)}:${text(tunnelSettings.targetPort)} via ${service.host}`,
      );
      return tunnel(endpoint, {
        tls: ['SIMPLE', 'MUTUAL'].includes(text((policy?.tls as Obj | undefined)?.mode ?? '')),
        target: `${text(tunnelSettings.targetHost)}:${text(tunnelSettings.targetPort)}`,
        protocol: ['HTTP2', 'GRPC'].includes(portProtocol) ? 'HTTP/2' : 'HTTP/1.1',
        method: text(tunnelSettings.protocol ?? 'CONNECT'),
      });
    }
    note(`${from}: to ${service.host}:${destPort ?? port} directly`);
    return toService(service, destPort ?? port);
  };

  const toService = (service: RegistryService, servicePort: number): MeshOutcome => {
    if (service.kind === 'Service')
      return reach({ ip: service.clusterIp ?? '', port: servicePort, serverHost: service.host }, 'direct');
    const endpoint = service.endpoints[0];
    if (service.resolution === 'NONE') return reach({ ip: remoteIp, port, serverHost: host }, 'direct');
    const address = endpoint?.address ?? service.host;
    const ip = isIp(address) ? address : (publicAddress(address) ?? '');
    const targetPort =
      endpoint?.port ?? service.ports.find((p) => p.number === servicePort)?.targetPort ?? servicePort;
    return reach({ ip, port: targetPort, serverHost: isIp(address) ? host : address }, 'direct');
  };

  /** Step 5: the egress gateway. */
  const egressGateway = (service: RegistryService, servicePort: number | undefined): MeshOutcome => {
    const svcPort = service.ports.find((p) => p.number === servicePort);
    if (!svcPort) return reset(`gateway: the egress gateway Service has no port ${servicePort}`, remoteIp);
    const targetPort = svcPort.targetPort ?? svcPort.number;
    const labels = gatewayLabels(input.resources, service);
    const servers = gatewayServers(input.resources, labels, svcPort.number);
    const added = envoyFilterPatches(input.resources, labels, service.namespace, 'LISTENER').filter(
      (listener) => socketPort(listener) === targetPort,
    );
    const count = added.length + (servers.length > 0 ? 1 : 0);
    if (count === 0) return reset(`gateway: the egress gateway has no listener on ${targetPort}`, remoteIp);
    if (count > 1) {
      return reset(
        `gateway: ${count} listeners on port ${targetPort} (Gateway servers and EnvoyFilter ADD); Envoy rejects the listener update`,
        remoteIp,
      );
    }
    if (servers.length > 0) return gatewayPassthrough(servers, svcPort.number, service.namespace);
    const listener = added[0]!;
    const chain = pickChain(
      list(field(listener, 'filter_chains')).map((fc) => ({
        sni: (field(obj(field(fc, 'filter_chain_match')), 'server_names') as string[] | undefined) ?? null,
        value: fc,
      })),
      host,
    );
    if (!chain)
      return reset(`gateway: listener ${text(listener.name)} has no filter chain for SNI ${host}`, remoteIp);
    const tcpProxy = list(chain.value.filters).find(
      (f) =>
        f.name === 'envoy.filters.network.tcp_proxy' ||
        text(field(obj(field(f, 'typed_config')), '@type')).endsWith('TcpProxy'),
    );
    if (!tcpProxy) return reset('gateway: the filter chain has no tcp_proxy', remoteIp);
    const config = obj(field(tcpProxy, 'typed_config'));
    const clusterName = text(config.cluster ?? '');
    const cluster = envoyFilterPatches(input.resources, labels, service.namespace, 'CLUSTER').find(
      (c) => c.name === clusterName,
    );
    if (!cluster)
      return reset(`gateway: cluster ${clusterName} does not exist on the egress gateway`, remoteIp);
    const endpoint = clusterEndpoint(cluster);
    if (!endpoint) return reset(`gateway: cluster ${clusterName} has no endpoint`, remoteIp);
    const tunneling = obj(field(config, 'tunneling_config'));
    if (!tunneling.hostname) {
      if (input.lab.proxy && endpoint.ip === input.lab.proxy.ip) {
        return reset('gateway: raw TLS to the proxy without a CONNECT (no tunneling_config)', remoteIp);
      }
      note(`gateway: tcp_proxy to ${endpoint.ip}:${endpoint.port}`);
      return reach({ ip: endpoint.ip, port: endpoint.port, serverHost: host }, 'direct');
    }
    const transport = obj(field(cluster, 'transport_socket'));
    const h2 =
      field(cluster, 'http2_protocol_options') !== undefined ||
      JSON.stringify(field(cluster, 'typed_extension_protocol_options') ?? {}).includes(
        'http2_protocol_options',
      );
    note(`gateway: EnvoyFilter chain for ${host} tunnels over cluster ${clusterName}`);
    return tunnel(endpoint, {
      tls:
        transport.name === 'envoy.transport_sockets.tls' ||
        text(field(obj(field(transport, 'typed_config')), '@type')).endsWith('UpstreamTlsContext'),
      target: text(tunneling.hostname).replace(/%REQUESTED_SERVER_NAME%/g, host),
      protocol: h2 ? 'HTTP/2' : 'HTTP/1.1',
      method: field(tunneling, 'use_post') === true ? 'POST' : 'CONNECT',
    });
  };

  const gatewayPassthrough = (
    servers: { gateway: MeshObject; server: Obj }[],
    servicePort: number,
    gatewayNs: string,
  ): MeshOutcome => {
    const match = servers.find(
      ({ server }) =>
        text(obj(server.tls).mode ?? '') === 'PASSTHROUGH' &&
        list(server.hosts).some((h) => hostMatches(text(h).split('/').at(-1)!, host)),
    );
    if (!match) return reset(`gateway: no PASSTHROUGH server on port ${servicePort} for ${host}`, remoteIp);
    const gw = match.gateway;
    for (const vs of input.resources.filter((r) => r.kind === 'VirtualService')) {
      const spec = obj(vs.spec);
      const ns = vs.metadata.namespace ?? 'default';
      const bound = (names: unknown) =>
        list(names).some((g) => {
          const ref = text(g);
          return (
            ref === `${gw.metadata.namespace}/${gw.metadata.name}` ||
            (ref === gw.metadata.name && ns === gw.metadata.namespace)
          );
        });
      if (!bound(spec.gateways) || !list(spec.hosts).some((h) => hostMatches(text(h), host))) continue;
      for (const route of list(spec.tls)) {
        const ok = list(route.match).some(
          (m) =>
            list(m.sniHosts).some((s) => hostMatches(text(s), host)) &&
            (m.port === undefined || m.port === servicePort) &&
            (m.gateways === undefined || bound(m.gateways)),
        );
        if (!ok) continue;
        const dest = heaviest(route, ns);
        if (!dest) continue;
        note(
          `gateway: Gateway ${gw.metadata.name} passthrough, VirtualService ${vs.metadata.name} routes ${host} to ${dest.host}`,
        );
        return follow(dest, 'gateway', gatewayNs);
      }
    }
    return reset(`gateway: no VirtualService routes SNI ${host} on Gateway ${gw.metadata.name}`, remoteIp);
  };

  // Step 2: interception.
  if (!input.istio || !input.source.sidecar) {
    note(input.istio ? 'sidecar: none, direct' : 'istio: not installed, direct');
    return reach({ ip: remoteIp, port, serverHost: host }, 'direct');
  }

  // Step 3: the sidecar's outbound listener.
  if (!tls) {
    const known = registry.some(
      (s) => (s.host === host || resolved.service === s) && s.ports.some((p) => p.number === port),
    );
    if (known || input.istio.outboundTrafficPolicy === 'ALLOW_ANY') {
      note(`sidecar: plain HTTP to ${host}:${port} (${known ? 'registry' : 'ALLOW_ANY'})`);
      return reach({ ip: remoteIp, port, serverHost: host }, 'direct');
    }
    note('sidecar: REGISTRY_ONLY, no service for plain HTTP; the BlackHole route answers 502');
    return finish({ exitCode: 0, httpCode: 502, remoteIp });
  }
  const listenerIp = resolved.service?.clusterIp ?? '0.0.0.0';
  const built = sidecarListener(registry, input.resources, input.source, listenerIp, port);
  pushStatus = built.pushStatus;
  for (const c of built.conflicts) note(`sidecar: conflict on ${listenerIp}:${port}: ${c}`);
  const chain = pickChain(
    built.chains.map((c) => ({ sni: c.sni, value: c })),
    host,
  );
  if (!chain) {
    if (input.istio.outboundTrafficPolicy === 'REGISTRY_ONLY') {
      return reset(
        `sidecar: no filter chain for ${host}:${port}; REGISTRY_ONLY sends it to the BlackHoleCluster`,
        remoteIp,
      );
    }
    note(`sidecar: no filter chain for ${host}:${port}; ALLOW_ANY passes it through`);
    return reach({ ip: remoteIp, port, serverHost: host }, 'direct');
  }
  const picked = chain.value;
  note(`sidecar: chain ${picked.origin} (server_names ${picked.sni ? picked.sni.join(',') : '*'})`);
  if (picked.route) return follow(picked.route, 'sidecar', input.source.namespace);
  return toService(picked.service, port);
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
  const accepted: RegistryService[] = [];
  const conflicts: string[] = [];
  const pushStatus: PushStatus = {};
  for (const service of services) {
    let added = false;
    for (const chain of chainsFor(service, resources, source.namespace, port)) {
      const clash = chains.find((c) => sameMatch(c.sni, chain.sni));
      if (clash) {
        // Istio reports TLS services as TCP in this message.
        const message = `Listener=${listenerIp}:${port} AcceptedTCP=${accepted.map((s) => s.host).join(',')} RejectedTCP=${service.host} TCPServices=${accepted.length}`;
        conflicts.push(message);
        pushStatus[CONFLICT_TCP_OVER_TCP] = {
          ...(pushStatus[CONFLICT_TCP_OVER_TCP] ?? {}),
          [`${listenerIp}:${port}`]: { proxy: `${source.pod}.${source.namespace}`, message },
        };
        continue;
      }
      chains.push(chain);
      added = true;
    }
    if (added) accepted.push(service);
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
        const named = obj(e.ports);
        const first = Object.values(named)[0];
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

function isEgressGateway(service: RegistryService, resources: MeshObject[]): boolean {
  if (service.kind !== 'Service' || !service.selector) return false;
  const labels = gatewayLabels(resources, service);
  return Object.entries(EGRESS_LABELS).every(([k, v]) => labels[k] === v);
}

/** The labels of the gateway pods a Service selects (from their Deployment's template). */
function gatewayLabels(resources: MeshObject[], service: RegistryService): Record<string, string> {
  const selector = service.selector ?? {};
  for (const d of resources.filter(
    (r) => r.kind === 'Deployment' && r.metadata.namespace === service.namespace,
  )) {
    const labels = (obj(obj(obj(d.spec).template).metadata).labels ?? {}) as Record<string, string>;
    if (Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels[k] === v))
      return labels;
  }
  return {};
}

function gatewayServers(resources: MeshObject[], labels: Record<string, string>, port: number) {
  const servers: { gateway: MeshObject; server: Obj }[] = [];
  for (const gw of resources.filter((r) => r.kind === 'Gateway')) {
    const selector = (obj(gw.spec).selector ?? {}) as Record<string, string>;
    if (Object.keys(selector).length === 0 || !Object.entries(selector).every(([k, v]) => labels[k] === v))
      continue;
    for (const server of list(obj(gw.spec).servers)) {
      if (Number(obj(server.port).number) === port) servers.push({ gateway: gw, server });
    }
  }
  return servers;
}

/**
 * Values of the EnvoyFilters' ADD patches of one kind (LISTENER or CLUSTER) that apply to a gateway:
 * a workloadSelector matching its labels, or no selector in its own namespace or the root namespace.
 */
function envoyFilterPatches(
  resources: MeshObject[],
  labels: Record<string, string>,
  gatewayNs: string,
  applyTo: string,
): Obj[] {
  const values: Obj[] = [];
  for (const ef of resources.filter((r) => r.kind === 'EnvoyFilter')) {
    const spec = obj(ef.spec);
    const selector = obj(spec.workloadSelector).labels as Record<string, string> | undefined;
    const ns = ef.metadata.namespace ?? 'default';
    const applies = selector
      ? Object.entries(selector).every(([k, v]) => labels[k] === v) &&
        (ns === gatewayNs || ns === 'istio-system')
      : ns === gatewayNs || ns === 'istio-system';
    if (!applies) continue;
    for (const patch of list(spec.configPatches)) {
      const context = text(obj(patch.match).context ?? 'ANY');
      if (
        patch.applyTo !== applyTo ||
        obj(patch.patch).operation !== 'ADD' ||
        !['ANY', 'GATEWAY'].includes(context)
      )
        continue;
      values.push(obj(obj(patch.patch).value));
    }
  }
  return values;
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
  if (service.kind === 'Service') {
    const endpoint = service.endpoints[0];
    return endpoint
      ? { ip: endpoint.address, port: endpoint.port ?? svcPort?.targetPort ?? port ?? 0 }
      : undefined;
  }
  const endpoint = service.endpoints[0];
  const address = endpoint?.address ?? service.host;
  const ip = isIp(address) ? address : publicAddress(address);
  return ip ? { ip, port: endpoint?.port ?? svcPort?.targetPort ?? port ?? 0 } : undefined;
}

/** The DestinationRule policy for a destination: the subset's fields over the top-level ones. */
function trafficPolicy(
  resources: MeshObject[],
  service: RegistryService,
  subset: string | undefined,
  port: number | undefined,
): Obj | undefined {
  const dr = resources.find(
    (r) =>
      r.kind === 'DestinationRule' &&
      qualify(text(obj(r.spec).host), r.metadata.namespace ?? 'default') === service.host,
  );
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

function isIp(text: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(text) || text.includes(':');
}

function isPrivate(ip: string): boolean {
  return /^(10\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.|127\.)/.test(ip);
}

/** Envoy config in EnvoyFilters may use proto field names or their JSON (camelCase) form. */
function field(value: unknown, snake: string): unknown {
  const o = obj(value);
  if (snake in o) return o[snake];
  const camel = snake.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
  return o[camel];
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
