/**
 * The listeners istiod builds for the mesh's proxies: the sidecar's outbound filter chains (and the
 * conflicts istiod reports between them), the egress gateway's listeners from Gateway servers and
 * EnvoyFilters (and why Envoy would NACK them), Envoy's filter chain selection by SNI, and both as
 * `istioctl proxy-config listeners` prints them.
 */
import { addedListeners, networkFilterPatches, patchTcpProxy } from './envoy-filters.js';
import {
  buildRegistry,
  gatewayOf,
  hostMatches,
  qualify,
  subsetDefined,
  trafficPolicy,
  visible,
} from './registry.js';
import type {
  Chain,
  Destination,
  GatewayIdentity,
  GatewayListener,
  MeshInput,
  MeshObject,
  PushStatus,
  RegistryService,
} from './types.js';
import { camelKeys, field, list, obj, text, type Obj } from './values.js';

export const CONFLICT_TCP_OVER_TCP = 'pilot_conflict_outbound_listener_tcp_over_current_tcp';

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
    | { sidecar: { pod: string; namespace: string; labels: Record<string, string> } },
): Obj[] {
  const registry = buildRegistry(input.resources);
  if ('gateway' in proxy) return gatewayProxyListeners(input, registry, proxy.gateway);
  return sidecarProxyListeners(input, registry, proxy.sidecar);
}

/** The listeners of a gateway pod (`labels` are the pod's) on the ports of the Services that select it. */
function gatewayProxyListeners(
  input: Pick<MeshInput, 'resources' | 'istio'>,
  registry: RegistryService[],
  pod: { namespace: string; labels: Record<string, string> },
): Obj[] {
  const out: Obj[] = [];
  const services = registry.filter((s) => {
    const gw = gatewayOf(s, input);
    // The pod carries its Deployment template's labels, and more (pod-template-hash).
    return (
      gw && gw.namespace === pod.namespace && Object.entries(gw.labels).every(([k, v]) => pod.labels[k] === v)
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
            filterChainMatch: c.sni && c.sni.length > 0 ? { serverNames: c.sni } : {},
            filters: [tcpProxyFilter(c.tcpProxy)],
          })),
        });
      }
    }
  }
  return out;
}

/**
 * A sidecar's 0.0.0.0 listeners on the ports of ServiceEntries without addresses, chains to clusters; a
 * chain whose cluster's DestinationRule tunnels, or whose tcp_proxy an EnvoyFilter patches, shows its
 * `tunneling_config` as istiod's would.
 */
function sidecarProxyListeners(
  input: Pick<MeshInput, 'resources' | 'istio'>,
  registry: RegistryService[],
  sidecar: { pod: string; namespace: string; labels: Record<string, string> },
): Obj[] {
  const out: Obj[] = [];
  const ports = new Set(
    registry
      .filter((s) => s.kind === 'ServiceEntry' && s.addresses.length === 0)
      .flatMap((s) => s.ports.map((p) => p.number)),
  );
  // A Service with a cluster IP gets a listener of its own on that address, per TCP port.
  const addressed = registry.flatMap((s) =>
    s.clusterIp
      ? s.ports
          .filter((p) => !['HTTP', 'HTTP2', 'GRPC'].includes(p.protocol))
          .map((p) => ({ ip: s.clusterIp!, port: p.number }))
      : [],
  );
  const wanted = [...[...ports].sort((a, b) => a - b).map((port) => ({ ip: '0.0.0.0', port })), ...addressed];
  for (const { ip, port } of wanted) {
    const built = sidecarListener(registry, input.resources, sidecar, ip, port);
    if (built.chains.length === 0) continue;
    out.push({
      name: `${ip}_${port}`,
      address: { socketAddress: { address: ip, portValue: port } },
      filterChains: built.chains.map((c) => ({
        filterChainMatch: c.sni ? { serverNames: c.sni } : {},
        filters: [tcpProxyFilter(sidecarTcpProxy(input.resources, registry, sidecar, port, c))],
      })),
    });
  }
  return out;
}

/**
 * The tcp_proxy of a sidecar's outbound chain on `port`: to the cluster of the chain's route (or of its
 * service), with the `tunneling_config` of that cluster's DestinationRule tunnel, then as the EnvoyFilter
 * NETWORK_FILTER patches that select the sidecar's pod change it.
 */
export function sidecarTcpProxy(
  resources: MeshObject[],
  registry: RegistryService[],
  sidecar: { namespace: string; labels: Record<string, string> },
  port: number,
  chain: Chain,
): Obj {
  // Where the chain sends the connection: its route's destination, or the service the chain is for.
  const [host, target] = chain.route
    ? [
        qualify(chain.route.host, chain.route.namespace),
        { port: chain.route.port, subset: chain.route.subset },
      ]
    : [chain.service.host, { port }];
  const generated = generatedTcpProxy(resources, registry, sidecar.namespace, host, target);
  const patches = networkFilterPatches(resources, sidecar, port, 'SIDECAR_OUTBOUND');
  return patchTcpProxy(generated, chain.sni ?? [], patches);
}

/** A tcp_proxy network filter with `config`, in Envoy's JSON form. */
function tcpProxyFilter(config: Obj | undefined): Obj {
  return {
    name: 'envoy.filters.network.tcp_proxy',
    typedConfig: { '@type': TCP_PROXY_TYPE, ...(camelKeys(config ?? {}) as Obj) },
  };
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
export function gatewayConfigNacks(input: Omit<MeshInput, 'request'>): string[] {
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
export function sidecarListener(
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
  const vs = meshVirtualService(service, resources, sourceNs);
  const chains = vs ? virtualServiceRoutes(vs, service, port) : [];
  if (chains.length > 0) return chains;
  const protocol = service.ports.find((p) => p.number === port)?.protocol;
  const sni = protocol === 'TLS' || protocol === 'HTTPS' ? [service.host] : null;
  return [{ sni, service, origin: `${service.kind} ${service.host}` }];
}

/** The VirtualService sidecars of `sourceNs` use for a service: visible, bound to `mesh`, naming its host. */
function meshVirtualService(
  service: RegistryService,
  resources: MeshObject[],
  sourceNs: string,
): MeshObject | undefined {
  // For sidecars only the oldest VirtualService of a host is used.
  return resources.find((r) => {
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
}

/** The sidecar's chains for `service` on `port` from VirtualService `vs`: TLS matches, then `tcp` routes. */
function virtualServiceRoutes(vs: MeshObject, service: RegistryService, port: number): Chain[] {
  const chains: Chain[] = [];
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
  return chains;
}

/** The destination of a route's heaviest weight (the model does not split traffic). */
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

/**
 * The egress gateway's listeners on `targetPort`: the one istiod generates from Gateway servers on the
 * Service port (only when a route binds to them), then EnvoyFilter ADDs; and why Envoy would NACK them.
 */
export function gatewayListeners(
  resources: MeshObject[],
  registry: RegistryService[],
  gw: GatewayIdentity,
  servicePort: number,
  targetPort: number,
): { listeners: GatewayListener[]; nacks: string[] } {
  const listeners: GatewayListener[] = [];
  const patches = networkFilterPatches(resources, gw, targetPort);
  const chains = serverChains({ resources, registry, gw, servicePort }).map((c) => ({
    ...c,
    tcpProxy: patchTcpProxy(c.tcpProxy, c.sni, patches),
  }));
  if (chains.length > 0) {
    listeners.push({ name: `0.0.0.0_${targetPort}`, origin: 'Gateway servers', chains });
  }
  listeners.push(...addedListeners(resources, gw, targetPort));
  return { listeners, nacks: listenerNacks(listeners) };
}

/** Why Envoy would reject a gateway's listeners: a name used twice, a tcp_proxy against its field rules. */
function listenerNacks(listeners: GatewayListener[]): string[] {
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
  return nacks;
}

/** What istiod generates the gateway's listener on one Service port from. */
interface GatewayPortScope {
  resources: MeshObject[];
  registry: RegistryService[];
  gw: GatewayIdentity;
  servicePort: number;
}

/** A filter chain istiod generates for a Gateway server. */
interface ServerChain {
  sni: string[];
  tcpProxy: Obj;
  origin: string;
  istioMutual?: boolean;
}

/**
 * istiod's filter chains for the Gateway servers on `servicePort`: for a PASSTHROUGH server one per bound
 * TLS route match (on SNI); for an ISTIO_MUTUAL server (protocol TLS) one on its hosts, which terminates
 * Istio's mTLS and sends the bytes where the first bound `tcp` route for the port says (VirtualServices in
 * creation order); for a TCP server one without a match (plain bytes carry no name), routed the same way.
 */
function serverChains(scope: GatewayPortScope): ServerChain[] {
  const { resources, gw, servicePort } = scope;
  const chains: ServerChain[] = [];
  for (const gateway of resources.filter((r) => r.kind === 'Gateway')) {
    const selector = (obj(gateway.spec).selector ?? {}) as Record<string, string>;
    if (Object.keys(selector).length === 0 || !Object.entries(selector).every(([k, v]) => gw.labels[k] === v))
      continue;
    for (const server of list(obj(gateway.spec).servers)) {
      if (Number(obj(server.port).number) !== servicePort) continue;
      const mode = text(obj(server.tls).mode);
      const hosts = list(server.hosts).map((h) => text(h));
      if (mode === 'PASSTHROUGH') {
        for (const vs of resources.filter((r) => r.kind === 'VirtualService')) {
          chains.push(...virtualServiceChains(scope, gateway, hosts, vs));
        }
      } else if (mode === 'ISTIO_MUTUAL' && text(obj(server.port).protocol) === 'TLS') {
        const chain = tcpRouteChain(scope, gateway, hosts, 'ISTIO_MUTUAL');
        if (chain) chains.push(chain);
      } else if (!mode && text(obj(server.port).protocol).toUpperCase() === 'TCP') {
        const chain = tcpRouteChain(scope, gateway, hosts, 'TCP');
        if (chain) chains.push(chain);
      }
    }
  }
  return chains;
}

/** The hosts of VirtualService `vs` that a server of `gateway` with hosts `serverHosts` admits. */
function admittedHosts(gateway: MeshObject, serverHosts: string[], vs: MeshObject): string[] {
  const gwNs = gateway.metadata.namespace ?? 'default';
  const vsNs = vs.metadata.namespace ?? 'default';
  // A server host `ns/name` admits VirtualServices of namespace ns only; `./name` the Gateway's own.
  return list(obj(vs.spec).hosts)
    .map((h) => text(h))
    .filter((h) =>
      serverHosts.some((sh) => {
        const [ns, name] = sh.includes('/') ? (sh.split('/', 2) as [string, string]) : ['*', sh];
        const nsOk = ns === '*' || (ns === '.' ? vsNs === gwNs : ns === vsNs);
        return nsOk && (hostMatches(name, h) || hostMatches(h, name));
      }),
    );
}

/**
 * The chain of an ISTIO_MUTUAL server (its hosts as SNI) or of a TCP server (no match): the first bound
 * `tcp` route for the port.
 */
function tcpRouteChain(
  scope: GatewayPortScope,
  gateway: MeshObject,
  serverHosts: string[],
  kind: 'ISTIO_MUTUAL' | 'TCP',
): ServerChain | undefined {
  for (const vs of scope.resources.filter((r) => r.kind === 'VirtualService')) {
    const vsNs = vs.metadata.namespace ?? 'default';
    const bound = (names: unknown) => bindsGateway(names, gateway, vsNs);
    if (!bound(obj(vs.spec).gateways) || admittedHosts(gateway, serverHosts, vs).length === 0) continue;
    for (const route of list(obj(vs.spec).tcp)) {
      const matches = list(route.match);
      const applies =
        matches.length === 0 ||
        matches.some(
          (m) =>
            (m.port === undefined || m.port === scope.servicePort) &&
            (m.gateways === undefined || bound(m.gateways)),
        );
      const dest = heaviest(route, vsNs);
      if (!applies || !dest) continue;
      return {
        sni: kind === 'TCP' ? [] : serverHosts.map((h) => (h.includes('/') ? h.split('/', 2)[1]! : h)),
        tcpProxy: gatewayTcpProxy(scope, dest),
        origin: `Gateway ${gateway.metadata.name} (${kind}), VirtualService ${vs.metadata.name} (tcp)`,
        ...(kind === 'ISTIO_MUTUAL' ? { istioMutual: true } : {}),
      };
    }
  }
  return undefined;
}

/** The chains of VirtualService `vs` on a PASSTHROUGH server of `gateway` with hosts `serverHosts`. */
function virtualServiceChains(
  scope: GatewayPortScope,
  gateway: MeshObject,
  serverHosts: string[],
  vs: MeshObject,
): ServerChain[] {
  const chains: ServerChain[] = [];
  const spec = obj(vs.spec);
  const vsNs = vs.metadata.namespace ?? 'default';
  const bound = (names: unknown) => bindsGateway(names, gateway, vsNs);
  if (!bound(spec.gateways)) return chains;
  const admitted = admittedHosts(gateway, serverHosts, vs);
  if (admitted.length === 0) return chains;
  for (const route of list(spec.tls)) {
    const dest = heaviest(route, vsNs);
    if (!dest) continue;
    for (const m of list(route.match)) {
      if (
        (m.port !== undefined && m.port !== scope.servicePort) ||
        (m.gateways !== undefined && !bound(m.gateways))
      )
        continue;
      const sni = list(m.sniHosts)
        .map((s) => text(s))
        .filter((s) => admitted.some((h) => hostMatches(h, s) || hostMatches(s, h)));
      if (sni.length === 0) continue;
      chains.push({
        sni,
        tcpProxy: gatewayTcpProxy(scope, dest),
        origin: `Gateway ${gateway.metadata.name}, VirtualService ${vs.metadata.name}`,
      });
    }
  }
  return chains;
}

/** Whether the references `names` (`ns/name`, or `name` within its own namespace) bind `gateway`. */
function bindsGateway(names: unknown, gateway: MeshObject, vsNs: string): boolean {
  const gwNs = gateway.metadata.namespace ?? 'default';
  return list(names).some((g) => {
    const ref = text(g);
    return ref === `${gwNs}/${gateway.metadata.name}` || (ref === gateway.metadata.name && vsNs === gwNs);
  });
}

/** The tcp_proxy istiod writes for a gateway route to `dest`. */
function gatewayTcpProxy(scope: GatewayPortScope, dest: Destination): Obj {
  const { resources, registry, gw } = scope;
  return generatedTcpProxy(resources, registry, gw.namespace, qualify(dest.host, dest.namespace), dest);
}

/**
 * The tcp_proxy istiod writes for a route to `host` (`dest`'s port and subset), as the proxy in `proxyNs`
 * sees it: to the cluster `outbound|port|subset|host`, with the DestinationRule's tunnel as
 * `tunneling_config` (when the subset, if any, is defined).
 */
function generatedTcpProxy(
  resources: MeshObject[],
  registry: RegistryService[],
  proxyNs: string,
  host: string,
  dest: { port?: number | undefined; subset?: string | undefined },
): Obj {
  const service = registry.find((s) => s.host === host && visible(s.exportTo, s.namespace, proxyNs));
  const port = dest.port ?? (service?.ports.length === 1 ? service.ports[0]!.number : undefined);
  const cluster = `outbound|${port ?? ''}|${dest.subset ?? ''}|${host}`;
  const tcpProxy: Obj = { stat_prefix: cluster, cluster };
  const policy = service ? trafficPolicy(resources, service, dest.subset, port, proxyNs) : undefined;
  const tunnel = obj(policy?.tunnel);
  if (
    text(tunnel.targetHost) &&
    (!dest.subset || (service && subsetDefined(resources, service, dest.subset, proxyNs)))
  ) {
    tcpProxy.tunneling_config = {
      hostname: `${text(tunnel.targetHost)}:${text(tunnel.targetPort)}`,
      ...(text(tunnel.protocol) === 'POST' ? { use_post: true } : {}),
    };
  }
  return tcpProxy;
}

/** Envoy's filter chain selection by SNI: exact name, then the longest wildcard, then a chain without match. */
export function pickChain<T>(
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
