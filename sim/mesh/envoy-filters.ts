/**
 * EnvoyFilters as the proxies receive them: the config patches that apply to a gateway, the listeners
 * and clusters their ADD patches add, and the NETWORK_FILTER patches of the tcp_proxy of the listeners
 * istiod generates, on a gateway or on a sidecar's outbound listeners.
 */
import { publicAddress, ROOT_NAMESPACE } from './registry.js';
import type { ClusterTarget, GatewayIdentity, GatewayListener, MeshObject } from './types.js';
import { deepMerge, field, isIp, list, obj, text, type Obj } from './values.js';

/** A proxy's workload as EnvoyFilters select it: its pod's namespace and labels. */
export interface Workload {
  namespace: string;
  labels: Record<string, string>;
}

/**
 * The config patches of the EnvoyFilters that apply to a workload's proxy in `context` (GATEWAY for a
 * gateway, SIDECAR_OUTBOUND for a sidecar's outbound listeners), or to any context.
 */
function envoyFilterPatches(
  resources: MeshObject[],
  workload: Workload,
  context: 'GATEWAY' | 'SIDECAR_OUTBOUND' = 'GATEWAY',
): Obj[] {
  const out: Obj[] = [];
  for (const ef of resources.filter((r) => r.kind === 'EnvoyFilter')) {
    const spec = obj(ef.spec);
    const selector = obj(spec.workloadSelector).labels as Record<string, string> | undefined;
    const ns = ef.metadata.namespace ?? 'default';
    // A workloadSelector matches pods of its own namespace; the root namespace's filters apply everywhere.
    const inScope = ns === workload.namespace || ns === ROOT_NAMESPACE;
    if (!inScope || (selector && !Object.entries(selector).every(([k, v]) => workload.labels[k] === v)))
      continue;
    for (const patch of list(spec.configPatches)) {
      if (['ANY', context].includes(text(obj(patch.match).context || 'ANY'))) out.push(patch);
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

/** The gateway's listeners on `targetPort` that EnvoyFilter LISTENER ADDs add, with their chains. */
export function addedListeners(
  resources: MeshObject[],
  gw: GatewayIdentity,
  targetPort: number,
): GatewayListener[] {
  const listeners: GatewayListener[] = [];
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
  return listeners;
}

/** A MERGE or REPLACE of the tcp_proxy filter, for the chain of one SNI or for every chain. */
export interface NetworkFilterPatch {
  operation: 'MERGE' | 'REPLACE';
  sni?: string;
  value: Obj;
}

/**
 * EnvoyFilter NETWORK_FILTER patches of the tcp_proxy on `port`: of a gateway's listener on its target
 * port, or (context SIDECAR_OUTBOUND) of a sidecar's outbound listener on the service port.
 */
export function networkFilterPatches(
  resources: MeshObject[],
  workload: Workload,
  port: number,
  context: 'GATEWAY' | 'SIDECAR_OUTBOUND' = 'GATEWAY',
): NetworkFilterPatch[] {
  const out: NetworkFilterPatch[] = [];
  for (const patch of envoyFilterPatches(resources, workload, context)) {
    if (patch.applyTo !== 'NETWORK_FILTER') continue;
    const operation = text(obj(patch.patch).operation);
    if (operation !== 'MERGE' && operation !== 'REPLACE') continue;
    const listener = obj(obj(patch.match).listener);
    if (listener.portNumber !== undefined && Number(listener.portNumber) !== port) continue;
    const chain = obj(listener.filterChain);
    const filterName = text(obj(chain.filter).name);
    if (filterName && filterName !== 'envoy.filters.network.tcp_proxy') continue;
    out.push({ operation, sni: text(chain.sni) || undefined, value: obj(obj(patch.patch).value) });
  }
  return out;
}

/** A generated tcp_proxy after the patches that match its chain (MERGE merges fields, REPLACE swaps). */
export function patchTcpProxy(tcpProxy: Obj, sni: string[], patches: NetworkFilterPatch[]): Obj {
  let out = tcpProxy;
  for (const p of patches) {
    if (p.sni && !sni.includes(p.sni)) continue;
    const typed = obj(field(p.value, 'typed_config'));
    const fields = Object.fromEntries(Object.entries(typed).filter(([k]) => k !== '@type'));
    out = p.operation === 'REPLACE' ? fields : deepMerge(out, fields);
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
export function addedClusters(resources: MeshObject[], gw: GatewayIdentity): ClusterTarget[] {
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

/** The first endpoint of an EnvoyFilter cluster's load_assignment, a host name resolved by the sim's DNS. */
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

/** The port of an Envoy listener's socket address. */
function socketPort(listener: Obj): number {
  return Number(field(obj(field(obj(listener.address), 'socket_address')), 'port_value'));
}
