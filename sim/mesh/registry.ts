/**
 * The mesh model's service registry and what istiod looks up in it: the services of ServiceEntries and
 * Kubernetes Services with their endpoints, the pod's DNS, the gateway Deployment a Service selects,
 * Istio's host names (short names, wildcards, exportTo) and the DestinationRule a proxy uses.
 */
import type { GatewayIdentity, MeshInput, MeshObject, RegistryService } from './types.js';
import { isIp, list, obj, text, type Obj } from './values.js';

/** The gateway Deployments of the demo profile. */
export const DEMO_GATEWAYS = ['istio-system/istio-egressgateway', 'istio-system/istio-ingressgateway'];

export const ROOT_NAMESPACE = 'istio-system';

/** Public addresses of the PoC's hosts (from its access log); other public names get a TEST-NET-3 address. */
const PUBLIC_DNS: Record<string, string> = {
  'www.google.com': '216.58.209.4',
  'www.wikipedia.org': '91.198.174.192',
};

/** A host name as the pod's resolver answers it: the address, and the Service when it is a cluster name. */
export interface ResolvedHost {
  ip: string;
  service?: RegistryService;
}

/** The registry istiod builds from the cluster's objects, oldest first: ServiceEntry hosts and Services. */
export function buildRegistry(resources: MeshObject[]): RegistryService[] {
  const services: RegistryService[] = [];
  for (const r of resources) {
    if (r.kind === 'ServiceEntry') services.push(...serviceEntryServices(r));
    else if (r.kind === 'Service') services.push(kubernetesService(r, resources));
  }
  return services;
}

/** A ServiceEntry's services: one per host, sharing its ports and endpoints. */
function serviceEntryServices(r: MeshObject): RegistryService[] {
  const spec = obj(r.spec);
  const ns = r.metadata.namespace ?? 'default';
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
  const services: RegistryService[] = [];
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
  return services;
}

/** A Kubernetes Service as a registry service `name.ns.svc.cluster.local`, with its endpoints. */
function kubernetesService(r: MeshObject, resources: MeshObject[]): RegistryService {
  const spec = obj(r.spec);
  const ns = r.metadata.namespace ?? 'default';
  const name = r.metadata.name;
  const ports = list(spec.ports).map((p) => ({
    number: Number(p.port),
    protocol: portProtocol(p),
    name: text(p.name ?? ''),
    targetPort: typeof p.targetPort === 'number' ? p.targetPort : Number(p.port),
  }));
  return {
    host: `${name}.${ns}.svc.cluster.local`,
    namespace: ns,
    kind: 'Service',
    ports,
    addresses: [],
    resolution: 'STATIC',
    endpoints: kubernetesEndpoints(resources, ns, name),
    clusterIp: typeof spec.clusterIP === 'string' ? spec.clusterIP : undefined,
    selector: spec.selector as Record<string, string> | undefined,
  };
}

/** The endpoints of Service `ns/name`: its EndpointSlices' addresses, then those of its legacy Endpoints. */
function kubernetesEndpoints(
  resources: MeshObject[],
  ns: string,
  name: string,
): { address: string; port?: number }[] {
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
  return endpoints;
}

/** Istio's protocol selection for a Kubernetes Service port: appProtocol, then the port name's prefix. */
function portProtocol(port: Obj): string {
  const declared = text(port.appProtocol ?? text(port.name ?? '').split('-')[0]).toUpperCase();
  return ['HTTP', 'HTTPS', 'HTTP2', 'GRPC', 'TLS', 'TCP', 'MONGO', 'REDIS', 'MYSQL'].includes(declared)
    ? declared
    : 'TCP';
}

/**
 * The pod's resolver: IPs as they are, cluster names (short, `.svc` or full) through kube-dns to the
 * Service's ClusterIP, other names of three labels or more through the sim's public DNS.
 */
export function resolveInPod(
  host: string,
  namespace: string,
  registry: RegistryService[],
): ResolvedHost | undefined {
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

/** Whether pods (a pod's or a pod template's annotations) ask for Istio's gateway injection template. */
export function isGatewayTemplate(annotations: Record<string, string> | undefined): boolean {
  return (annotations?.['inject.istio.io/templates'] ?? '').split(',').includes('gateway');
}

/**
 * The gateway whose pods a Service selects: one of the installation's gateway Deployments, or one deployed
 * with the gateway injection template (https://istio.io/latest/docs/setup/additional-setup/gateway/).
 */
export function gatewayOf(
  service: RegistryService,
  input: Pick<MeshInput, 'resources' | 'istio'>,
): GatewayIdentity | undefined {
  if (service.kind !== 'Service' || !service.selector || Object.keys(service.selector).length === 0)
    return undefined;
  const gateways = input.istio?.gateways ?? DEMO_GATEWAYS;
  for (const d of input.resources) {
    if (d.kind !== 'Deployment' || d.metadata.namespace !== service.namespace) continue;
    const template = obj(obj(obj(d.spec).template).metadata);
    const injected = isGatewayTemplate(template.annotations as Record<string, string> | undefined);
    if (!injected && !gateways.includes(`${d.metadata.namespace}/${d.metadata.name}`)) continue;
    const labels = (template.labels ?? {}) as Record<string, string>;
    if (Object.entries(service.selector).every(([k, v]) => labels[k] === v)) {
      return { namespace: service.namespace, labels };
    }
  }
  return undefined;
}

/**
 * Where istiod's cluster for `service` on `port` connects: a Service's first endpoint; a ServiceEntry's
 * first endpoint, or its host, through the sim's public DNS.
 */
export function serviceEndpoint(
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

export function subsetDefined(
  resources: MeshObject[],
  service: RegistryService,
  subset: string,
  proxyNs: string,
): boolean {
  const dr = destinationRule(resources, service, proxyNs);
  return list(obj(dr?.spec).subsets).some((s) => s.name === subset);
}

/** The DestinationRule policy for a destination: the subset's fields over the top-level ones. */
export function trafficPolicy(
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

/** Istio's short names: `name` and `name.ns` are Kubernetes Services of the config's namespace. */
export function qualify(host: string, namespace: string): string {
  if (host.includes('*') || host.endsWith('.svc.cluster.local')) return host;
  const parts = host.split('.');
  if (parts.length === 1) return `${host}.${namespace}.svc.cluster.local`;
  if (parts.length === 2) return `${host}.svc.cluster.local`;
  return host;
}

export function hostMatches(pattern: string, host: string): boolean {
  if (pattern === '*' || pattern === host) return true;
  return pattern.startsWith('*.') && host.endsWith(pattern.slice(1));
}

/** `exportTo`: absent or `*` is every namespace, `.` the config's own. */
export function visible(exportTo: string[] | undefined, ownNs: string, sourceNs: string): boolean {
  if (!exportTo || exportTo.length === 0) return true;
  return exportTo.some((e) => e === '*' || e === sourceNs || (e === '.' && ownNs === sourceNs));
}
