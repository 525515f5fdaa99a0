/**
 * Asking a running istiod where a probe goes: the client pod and the egress gateway pod as the API
 * server has them (address, labels, owner), the cluster's Services as the client's DNS would answer
 * them, and istiod's xDS address, put together into the request `istio-oracle xds` answers.
 */
import type { MeshProbe, XdsProxy, XdsRequest } from './oracle.js';

/** Runs `kubectl get ... -o json` against the lab's API server and returns the parsed output. */
export type KubeGet = (args: string[]) => Promise<unknown>;

export interface PodJson {
  metadata: {
    name: string;
    namespace: string;
    labels?: Record<string, string>;
    ownerReferences?: { kind: string; name: string }[];
    creationTimestamp?: string;
  };
  spec?: { containers: { name: string }[] };
  status?: { podIP?: string; phase?: string };
}

/** The newest Running pod of a Deployment (what `kubectl exec deploy/NAME` picks), if any. */
export async function runningPodOf(
  get: KubeGet,
  namespace: string,
  deployment: string,
): Promise<PodJson | undefined> {
  const found = (await get(['-n', namespace, 'deployment', deployment])) as {
    spec: { selector: { matchLabels?: Record<string, string> } };
  };
  const selector = Object.entries(found.spec.selector.matchLabels ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
  return ((await get(['-n', namespace, 'pods', '-l', selector])) as { items: PodJson[] }).items
    .filter((p) => p.status?.phase === 'Running')
    .sort((a, b) =>
      String(b.metadata.creationTimestamp).localeCompare(String(a.metadata.creationTimestamp)),
    )[0];
}

interface ServiceJson {
  metadata: { name: string; namespace: string };
  spec: { clusterIP?: string };
}

/** The proxy of a pod, named by its Deployment when a ReplicaSet owns it (as istio-agent reports). */
export function proxyOfPod(pod: PodJson): XdsProxy {
  if (!pod.status?.podIP) {
    throw new Error(`pod ${pod.metadata.namespace}/${pod.metadata.name} has no address yet`);
  }
  const owner = pod.metadata.ownerReferences?.find((o) => o.kind === 'ReplicaSet');
  return {
    pod: pod.metadata.name,
    namespace: pod.metadata.namespace,
    ip: pod.status.podIP,
    labels: pod.metadata.labels ?? {},
    workload: owner ? owner.name.replace(/-[a-z0-9]+$/, '') : pod.metadata.name,
  };
}

/**
 * What the client's resolver answers for Services: `name.namespace.svc.cluster.local`, `name.namespace`,
 * `name.namespace.svc`, and the bare name in the client's own namespace (its search path).
 */
export function serviceVips(services: ServiceJson[], clientNamespace: string): Record<string, string> {
  const vips: Record<string, string> = {};
  for (const svc of services) {
    const ip = svc.spec.clusterIP;
    if (!ip || ip === 'None') continue;
    const { name, namespace } = svc.metadata;
    for (const host of [
      `${name}.${namespace}.svc.cluster.local`,
      `${name}.${namespace}`,
      `${name}.${namespace}.svc`,
    ]) {
      vips[host] = ip;
    }
    if (namespace === clientNamespace) vips[name] = ip;
  }
  return vips;
}

const NO_PROXY: XdsProxy = { pod: '', namespace: '', ip: '', labels: {} };

export interface LiveMeshQuery {
  /** istiod's plain-gRPC xDS address. */
  istiod: string;
  outboundTrafficPolicy: XdsRequest['outboundTrafficPolicy'];
  client: { pod: string; namespace: string };
  gateway: { namespace: string; labels: Record<string, string> };
  probes: MeshProbe[];
}

/** Reads the pods and Services the walk needs from the API server and builds the xDS request. */
export async function liveMeshRequest(get: KubeGet, query: LiveMeshQuery): Promise<XdsRequest> {
  const client = (await get(['-n', query.client.namespace, 'pod', query.client.pod])) as PodJson;
  const selector = Object.entries(query.gateway.labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
  const gateways = (
    (await get(['-n', query.gateway.namespace, 'pods', '-l', selector])) as { items: PodJson[] }
  ).items.filter((p) => p.status?.phase === 'Running' && p.status.podIP);
  const services = ((await get(['services', '-A'])) as { items: ServiceJson[] }).items;
  return {
    istiod: query.istiod,
    outboundTrafficPolicy: query.outboundTrafficPolicy,
    sidecar: proxyOfPod(client),
    // Without a running gateway pod, nothing serves what the sidecar sends there.
    gateway: gateways[0] ? proxyOfPod(gateways[0]) : NO_PROXY,
    vips: serviceVips(services, query.client.namespace),
    probes: query.probes,
  };
}
