/**
 * The simulated Kubernetes cluster the stand-in kubectl and istioctl share: stored objects (keyed by
 * kind, namespace and name), the pods that Deployments own, and the Istio installation. It lives in one
 * state file (`<sim state>/cluster.json`), always changed under its lock.
 *
 * What the API server does here: kind and version lookup (Istio's kinds exist only once Istio's CRDs
 * are installed), namespace checks, `created`/`configured`/`unchanged` from the last applied manifest,
 * Secret `stringData`, ClusterIPs, a ReplicaSet-like pod per replica with Istio's sidecar injection
 * decided when the pod is created, and a pod phase that stays Pending while a volume's ConfigMap or
 * Secret is missing.
 */
import { createHash } from 'node:crypto';
import { isGatewayTemplate } from '../mesh/model.js';

export const CLUSTER_STATE = 'cluster';
export const ISTIO_VERSION = '1.28.3';
export const KUBE_VERSION = 'v1.33.3';
/** The single node of the k0s cluster. */
export const NODE_NAME = 'k8s';

export interface ObjectMeta {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  uid?: string;
  creationTimestamp?: string;
  generation?: number;
  resourceVersion?: string;
  ownerReferences?: { kind: string; name: string }[];
}

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  [field: string]: unknown;
}

export interface StoredObject {
  object: KubeObject;
  /** Canonical JSON of the manifest last applied, to tell `unchanged` from `configured`. */
  applied: string;
  /** Creation order; Istio orders services and configs by creation time. */
  seq: number;
  /** When the API server last created or changed it (ms since the epoch); istiod's proxies see it later. */
  appliedAt?: number;
}

export interface IstioInstall {
  version: string;
  profile: string;
  /** The `--set` values, as given. */
  set: Record<string, string>;
  /** Deployments the installation made (istiod, istio-egressgateway, ...). */
  components: string[];
  outboundTrafficPolicy: 'ALLOW_ANY' | 'REGISTRY_ONLY';
  accessLogFile: string;
  /** The revision installed (`istioctl install --revision`); unset: the default one. */
  revision?: string;
}

export interface ClusterState {
  seq: number;
  objects: Record<string, StoredObject>;
  /** Istio config deleted less than the config delay ago, which the proxies still hold (by key). */
  deleted?: Record<string, StoredObject & { deletedAt: number }>;
  istio?: IstioInstall;
}

export interface KindInfo {
  kind: string;
  /** API group, '' for the core group. */
  group: string;
  versions: string[];
  plural: string;
  namespaced: boolean;
  short: string[];
  /** Only served once Istio's CRDs are installed. */
  istio?: boolean;
}

const ISTIO_NET = ['v1', 'v1beta1', 'v1alpha3'];
export const KINDS: KindInfo[] = [
  { kind: 'Namespace', group: '', versions: ['v1'], plural: 'namespaces', namespaced: false, short: ['ns'] },
  { kind: 'Node', group: '', versions: ['v1'], plural: 'nodes', namespaced: false, short: ['no'] },
  { kind: 'Pod', group: '', versions: ['v1'], plural: 'pods', namespaced: true, short: ['po'] },
  { kind: 'Service', group: '', versions: ['v1'], plural: 'services', namespaced: true, short: ['svc'] },
  {
    kind: 'ServiceAccount',
    group: '',
    versions: ['v1'],
    plural: 'serviceaccounts',
    namespaced: true,
    short: ['sa'],
  },
  { kind: 'ConfigMap', group: '', versions: ['v1'], plural: 'configmaps', namespaced: true, short: ['cm'] },
  { kind: 'Secret', group: '', versions: ['v1'], plural: 'secrets', namespaced: true, short: [] },
  { kind: 'Endpoints', group: '', versions: ['v1'], plural: 'endpoints', namespaced: true, short: ['ep'] },
  {
    kind: 'Deployment',
    group: 'apps',
    versions: ['v1'],
    plural: 'deployments',
    namespaced: true,
    short: ['deploy'],
  },
  {
    kind: 'EndpointSlice',
    group: 'discovery.k8s.io',
    versions: ['v1'],
    plural: 'endpointslices',
    namespaced: true,
    short: [],
  },
  ...(
    [
      ['ServiceEntry', 'serviceentries', ['se'], ISTIO_NET],
      ['VirtualService', 'virtualservices', ['vs'], ISTIO_NET],
      ['DestinationRule', 'destinationrules', ['dr'], ISTIO_NET],
      ['Gateway', 'gateways', ['gw'], ISTIO_NET],
      ['Sidecar', 'sidecars', [], ISTIO_NET],
      ['WorkloadEntry', 'workloadentries', ['we'], ISTIO_NET],
      // EnvoyFilter never left v1alpha3.
      ['EnvoyFilter', 'envoyfilters', [], ['v1alpha3']],
    ] as const
  ).map(([kind, plural, short, versions]) => ({
    kind,
    group: 'networking.istio.io',
    versions: [...versions],
    plural,
    namespaced: true,
    short: [...short],
    istio: true,
  })),
  {
    kind: 'PeerAuthentication',
    group: 'security.istio.io',
    versions: ['v1', 'v1beta1'],
    plural: 'peerauthentications',
    namespaced: true,
    short: ['pa'],
    istio: true,
  },
];

/** The cluster of a freshly booted k0s node: its system namespaces, the node, the `kubernetes` Service. */
export function initialCluster(): ClusterState {
  const state: ClusterState = { seq: 0, objects: {} };
  const stamp = new Date().toISOString();
  for (const name of ['default', 'kube-system', 'kube-public', 'kube-node-lease']) {
    store(
      state,
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: namespaceLabels(name) } },
      stamp,
    );
  }
  store(
    state,
    {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: NODE_NAME, labels: { 'kubernetes.io/hostname': NODE_NAME } },
      status: { conditions: [{ type: 'Ready', status: 'True' }] },
    },
    stamp,
  );
  store(
    state,
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'kubernetes', namespace: 'default' },
      spec: {
        clusterIP: '10.96.0.1',
        ports: [{ name: 'https', port: 443, protocol: 'TCP', targetPort: 6443 }],
      },
    },
    stamp,
  );
  return state;
}

/** The label the API server puts on every namespace (Kubernetes 1.21 and later). */
function namespaceLabels(name: string): Record<string, string> {
  return { 'kubernetes.io/metadata.name': name };
}

function store(state: ClusterState, object: KubeObject, stamp: string): void {
  state.seq += 1;
  object.metadata = {
    ...object.metadata,
    uid: uid(`${object.kind}/${object.metadata.namespace}/${object.metadata.name}/${state.seq}`),
    creationTimestamp: stamp,
    generation: 1,
    resourceVersion: String(state.seq),
  };
  state.objects[keyOf(object.kind, object.metadata.namespace, object.metadata.name)] = {
    object,
    applied: canonical(object),
    seq: state.seq,
  };
}

export function keyOf(kind: string, namespace: string | undefined, name: string): string {
  return `${kind}/${namespace ?? ''}/${name}`;
}

/** Looks a resource type up the way kubectl's command line names it (plural, singular, short, Kind, `x.group`). */
export function kindByName(name: string, state: ClusterState): KindInfo | undefined {
  const lower = name.toLowerCase();
  return served(state).find((info) => {
    const names = [info.plural, info.kind.toLowerCase(), ...info.short];
    if (names.includes(lower)) return true;
    return info.group !== '' && names.some((n) => lower === `${n}.${info.group}`);
  });
}

function served(state: ClusterState): KindInfo[] {
  return KINDS.filter((info) => !info.istio || state.istio);
}

/** `deployment.apps`, `configmap`: how kubectl names an object's type in `TYPE/NAME` output. */
export function typeRef(info: KindInfo): string {
  return info.group ? `${info.kind.toLowerCase()}.${info.group}` : info.kind.toLowerCase();
}

/** `deployments.apps`, `configmaps`: how the API server names a resource in errors. */
export function resourceRef(info: KindInfo): string {
  return info.group ? `${info.plural}.${info.group}` : info.plural;
}

export function kindInfo(kind: string): KindInfo | undefined {
  return KINDS.find((info) => info.kind === kind);
}

export function getObject(state: ClusterState, kind: string, namespace: string | undefined, name: string) {
  return state.objects[keyOf(kind, namespace, name)];
}

export function listObjects(state: ClusterState, kind: string, namespace?: string): StoredObject[] {
  return Object.values(state.objects)
    .filter(
      (s) => s.object.kind === kind && (namespace === undefined || s.object.metadata.namespace === namespace),
    )
    .sort((a, b) => a.seq - b.seq);
}

export interface ApplyResult {
  /** `created`, `configured` or `unchanged`. */
  verb?: string;
  error?: string;
  info?: KindInfo;
  name?: string;
}

/** Applies one manifest document the way the API server would for `kubectl apply`. */
export function applyManifest(
  state: ClusterState,
  manifest: unknown,
  options: { file: string; namespace?: string },
): ApplyResult {
  if (!manifest || typeof manifest !== 'object' || Array.isArray(manifest)) {
    return { error: `error: error validating "${options.file}": error validating data: invalid object` };
  }
  const doc = structuredClone(manifest) as Partial<KubeObject>;
  const missing = [!doc.apiVersion && 'apiVersion not set', !doc.kind && 'kind not set'].filter(Boolean);
  if (missing.length > 0) {
    return {
      error:
        `error: error validating "${options.file}": error validating data: [${missing.join(', ')}]; ` +
        'if you choose to ignore these errors, turn validation off with --validate=false',
    };
  }
  const apiVersion = doc.apiVersion!;
  const kind = doc.kind!;
  const group = apiVersion.includes('/') ? apiVersion.split('/')[0]! : '';
  const version = apiVersion.split('/').at(-1)!;
  const info = served(state).find(
    (k) => k.kind === kind && k.group === group && k.versions.includes(version),
  );
  const name = doc.metadata?.name;
  if (!info) {
    return {
      error:
        `error: resource mapping not found for name: "${name ?? ''}" namespace: "${doc.metadata?.namespace ?? ''}" ` +
        `from "${options.file}": no matches for kind "${kind}" in version "${apiVersion}"\nensure CRDs are installed first`,
    };
  }
  if (!name) {
    return {
      error: `error: error when retrieving current configuration from "${options.file}": resource name may not be empty`,
    };
  }
  let namespace: string | undefined;
  if (info.namespaced) {
    const own = doc.metadata?.namespace;
    if (own && options.namespace && own !== options.namespace) {
      return {
        error:
          `error: the namespace from the provided object "${own}" does not match the namespace "${options.namespace}". ` +
          `You must pass '--namespace=${own}' to perform this operation.`,
      };
    }
    namespace = own ?? options.namespace ?? 'default';
    if (!getObject(state, 'Namespace', undefined, namespace)) {
      return {
        error: `Error from server (NotFound): error when creating "${options.file}": namespaces "${namespace}" not found`,
      };
    }
  }
  const object = { ...doc, metadata: { ...doc.metadata, name, namespace } } as KubeObject;
  if (!info.namespaced) delete object.metadata.namespace;
  if (info.istio) {
    const invalid = validateIstio(object);
    if (invalid) {
      return {
        error:
          `Error from server: error when creating "${options.file}": admission webhook "validation.istio.io" ` +
          `denied the request: configuration is invalid: ${invalid}`,
      };
    }
  }
  if (kind === 'Secret' && object.stringData && typeof object.stringData === 'object') {
    const data = { ...((object.data as Record<string, string>) ?? {}) };
    for (const [key, value] of Object.entries(object.stringData as Record<string, string>)) {
      data[key] = Buffer.from(String(value)).toString('base64');
    }
    object.data = data;
    delete object.stringData;
  }
  const applied = canonical(object);
  const key = keyOf(kind, namespace, name);
  const existing = state.objects[key];
  if (existing?.applied === applied) return { verb: 'unchanged', info, name };
  state.seq += 1;
  if (existing) {
    const meta = existing.object.metadata;
    object.metadata = {
      ...object.metadata,
      uid: meta.uid,
      creationTimestamp: meta.creationTimestamp,
      generation: (meta.generation ?? 1) + 1,
      resourceVersion: String(state.seq),
    };
  } else {
    object.metadata = {
      ...object.metadata,
      uid: uid(`${key}/${state.seq}`),
      creationTimestamp: new Date().toISOString(),
      generation: 1,
      resourceVersion: String(state.seq),
    };
  }
  if (kind === 'Service') assignClusterIp(object, existing?.object);
  if (kind === 'Namespace') object.metadata.labels = { ...object.metadata.labels, ...namespaceLabels(name) };
  state.objects[key] = { object, applied, seq: existing?.seq ?? state.seq, appliedAt: Date.now() };
  if (state.deleted) delete state.deleted[key];
  if (kind === 'Deployment') reconcilePods(state, object);
  return { verb: existing ? 'configured' : 'created', info, name };
}

/** Deletes an object and what it owns (a Deployment's pods, a Namespace's objects); false when absent. */
export function deleteObject(
  state: ClusterState,
  kind: string,
  namespace: string | undefined,
  name: string,
): boolean {
  const key = keyOf(kind, namespace, name);
  const stored = state.objects[key];
  if (!stored) return false;
  delete state.objects[key];
  if (kindInfo(kind)?.istio) (state.deleted ??= {})[key] = { ...stored, deletedAt: Date.now() };
  if (kind === 'Deployment') {
    for (const pod of podsOf(state, namespace!, name))
      delete state.objects[keyOf('Pod', namespace, pod.metadata.name)];
  }
  if (kind === 'Namespace') {
    for (const [k, s] of Object.entries(state.objects)) {
      if (s.object.metadata.namespace !== name) continue;
      delete state.objects[k];
      // istiod sees the namespace's Istio config go as it sees any deletion.
      if (kindInfo(s.object.kind)?.istio) (state.deleted ??= {})[k] = { ...s, deletedAt: Date.now() };
    }
  }
  return true;
}

/**
 * A few of the checks istiod's validating webhook makes, the ones a manifest of this lab can get wrong
 * (https://istio.io/latest/docs/reference/config/networking/).
 */
function validateIstio(object: KubeObject): string | undefined {
  const spec = (object.spec ?? {}) as Record<string, unknown>;
  const list = (value: unknown): Record<string, unknown>[] =>
    Array.isArray(value) ? (value as Record<string, unknown>[]) : [];
  switch (object.kind) {
    case 'ServiceEntry': {
      const hosts = spec.hosts as string[] | undefined;
      if (!hosts?.length) return 'service entry must have at least one host';
      const ports = list(spec.ports);
      if (ports.length === 0 && spec.resolution !== 'NONE')
        return 'service entry must have at least one port';
      for (const port of ports) {
        if (!port.number) return 'port number must be set';
        if (!port.name) return 'port name must be set';
      }
      if (
        spec.resolution === 'DNS' &&
        hosts.some((h) => h.startsWith('*')) &&
        list(spec.endpoints).length === 0
      )
        return 'wildcard host is not allowed with DNS resolution unless endpoints are given';
      return undefined;
    }
    case 'VirtualService': {
      const hosts = (spec.hosts as string[] | undefined) ?? [];
      if (hosts.length === 0) return 'virtual service must have at least one host';
      for (const route of list(spec.tls)) {
        const matches = list(route.match);
        if (matches.length === 0) return 'TLS route must have at least one match condition';
        for (const match of matches) {
          const sni = (match.sniHosts as string[] | undefined) ?? [];
          if (sni.length === 0) return 'TLS match must have at least one SNI host';
          for (const s of sni) {
            if (!hosts.some((h) => h === '*' || h === s || (h.startsWith('*') && s.endsWith(h.slice(1))))) {
              return `the SNI host ${s} is not a compatible subset of any of the virtual service hosts: [${hosts.join(', ')}]`;
            }
          }
        }
        if (list(route.route).length === 0) return 'TLS route is required';
      }
      return undefined;
    }
    case 'DestinationRule': {
      if (!spec.host) return 'destination rule must have a host';
      const policies = [spec.trafficPolicy, ...list(spec.subsets).map((s) => s.trafficPolicy)];
      for (const policy of policies as Record<string, Record<string, unknown>>[]) {
        const tunnel = policy?.tunnel;
        if (tunnel && (!tunnel.targetHost || !tunnel.targetPort))
          return 'tunnel settings must have targetHost and targetPort';
        if (tunnel?.protocol !== undefined && tunnel.protocol !== 'CONNECT' && tunnel.protocol !== 'POST')
          return `tunnel protocol must be CONNECT or POST`;
      }
      return undefined;
    }
    case 'Gateway':
      if (list(spec.servers).length === 0) return 'gateway must have at least one server';
      return undefined;
    case 'EnvoyFilter':
      if (list(spec.configPatches).length === 0) return 'Envoy filter: missing configPatches';
      return undefined;
    default:
      return undefined;
  }
}

function assignClusterIp(service: KubeObject, previous: KubeObject | undefined): void {
  const spec = (service.spec ??= {}) as Record<string, unknown>;
  if (spec.clusterIP === 'None') return;
  const before = (previous?.spec as Record<string, unknown> | undefined)?.clusterIP;
  if (typeof before === 'string') spec.clusterIP = before;
  else if (typeof spec.clusterIP !== 'string') {
    const h = hashBytes(`${service.metadata.namespace}/${service.metadata.name}`);
    spec.clusterIP = `10.96.${h[0]! % 250}.${2 + (h[1]! % 250)}`;
  }
}

const SAFE = 'bcdfghjklmnpqrstvwxz2456789';

/** Kubernetes' safe-encoded hash strings, as in `curl-698cfc4445-5f4w2`. */
function safeHash(text: string, length: number): string {
  return [...hashBytes(text).subarray(0, length)].map((b) => SAFE[b % SAFE.length]).join('');
}

function hashBytes(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

function uid(seed: string): string {
  const hex = hashBytes(seed).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

/** JSON with sorted keys, so that equal manifests compare equal whatever their key order. */
export function canonical(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, sortKeys((value as Record<string, unknown>)[k])]),
    );
  }
  return value;
}

export function podsOf(state: ClusterState, namespace: string, deployment: string): KubeObject[] {
  return listObjects(state, 'Pod', namespace)
    .map((s) => s.object)
    .filter((pod) => {
      const hash = pod.metadata.labels?.['pod-template-hash'];
      return pod.metadata.ownerReferences?.some(
        (o) => o.kind === 'ReplicaSet' && o.name === `${deployment}-${hash}`,
      );
    });
}

/**
 * Makes the Deployment's pods match its template: same template (and replicas) keeps the pods, any
 * change replaces them, as a new ReplicaSet would. Injection is decided now, as the webhook does it at
 * pod creation (https://istio.io/latest/docs/setup/additional-setup/sidecar-injection/).
 */
export function reconcilePods(state: ClusterState, deployment: KubeObject): void {
  const namespace = deployment.metadata.namespace!;
  const spec = (deployment.spec ?? {}) as {
    replicas?: number;
    template?: KubeObject & { spec?: Record<string, unknown> };
  };
  const template = spec.template ?? ({ metadata: {} } as KubeObject);
  const replicas = spec.replicas ?? 1;
  const hash = safeHash(canonical(template), 10);
  const current = podsOf(state, namespace, deployment.metadata.name);
  if (current.length === replicas && current.every((p) => p.metadata.labels?.['pod-template-hash'] === hash))
    return;
  for (const pod of current) delete state.objects[keyOf('Pod', namespace, pod.metadata.name)];
  const labels: Record<string, string> = { ...(template.metadata?.labels ?? {}), 'pod-template-hash': hash };
  const podSpec = structuredClone(template.spec ?? {}) as {
    containers?: Record<string, unknown>[];
    [k: string]: unknown;
  };
  const annotations = { ...(template.metadata?.annotations ?? {}) };
  const inject = injectsSidecar(state, namespace, labels);
  if (inject && isGatewayTemplate(annotations)) {
    // The gateway template: the pod's own istio-proxy container (image `auto`) becomes Istio's proxy, and
    // no init container redirects its traffic.
    podSpec.containers = (podSpec.containers ?? []).map((c) =>
      c.name === 'istio-proxy' && c.image === 'auto'
        ? { ...c, image: `docker.io/istio/proxyv2:${ISTIO_VERSION}` }
        : c,
    );
    annotations['sidecar.istio.io/status'] = JSON.stringify({
      containers: ['istio-proxy'],
      revision: 'default',
    });
  } else if (inject) {
    podSpec.initContainers = [
      ...((podSpec.initContainers as unknown[]) ?? []),
      { name: 'istio-init', image: `docker.io/istio/proxyv2:${ISTIO_VERSION}` },
    ];
    podSpec.containers = [
      ...(podSpec.containers ?? []),
      { name: 'istio-proxy', image: `docker.io/istio/proxyv2:${ISTIO_VERSION}` },
    ];
    annotations['sidecar.istio.io/status'] = JSON.stringify({
      initContainers: ['istio-init'],
      containers: ['istio-proxy'],
      revision: 'default',
    });
    labels['security.istio.io/tlsMode'] = 'istio';
  }
  podSpec.nodeName = NODE_NAME;
  for (let i = 0; i < replicas; i++) {
    state.seq += 1;
    const name = `${deployment.metadata.name}-${hash}-${safeHash(`${hash}/${state.seq}/${i}`, 5)}`;
    const pod: KubeObject = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name,
        namespace,
        labels,
        ...(Object.keys(annotations).length > 0 ? { annotations } : {}),
        ownerReferences: [{ kind: 'ReplicaSet', name: `${deployment.metadata.name}-${hash}` }],
        uid: uid(`${namespace}/${name}`),
        creationTimestamp: new Date().toISOString(),
        resourceVersion: String(state.seq),
      },
      spec: podSpec,
    };
    state.objects[keyOf('Pod', namespace, name)] = { object: pod, applied: canonical(pod), seq: state.seq };
  }
}

/**
 * Istio's injection policy: the namespace label, then the pod's `sidecar.istio.io/inject` label. A namespace
 * label `istio.io/rev` asks that revision's injector, which exists only when that revision is installed;
 * `istio-injection=enabled` (obeyed first) is served by the one istiod the sim installs, whatever its revision.
 */
function injectsSidecar(state: ClusterState, namespace: string, podLabels: Record<string, string>): boolean {
  if (!state.istio?.components.includes('istiod')) return false;
  const nsLabels = getObject(state, 'Namespace', undefined, namespace)?.object.metadata.labels ?? {};
  const podSays = podLabels['sidecar.istio.io/inject'];
  if (nsLabels['istio-injection'] === 'enabled') return podSays !== 'false';
  const revision = nsLabels['istio.io/rev'];
  if (nsLabels['istio-injection'] === undefined && revision !== undefined)
    return revision === (state.istio.revision ?? 'default') && podSays !== 'false';
  if (nsLabels['istio-injection'] === 'disabled') return false;
  return podSays === 'true';
}

/** True when the pod's containers run: their images exist, and every ConfigMap and Secret its volumes need. */
export function podRunning(state: ClusterState, pod: KubeObject): boolean {
  const volumes = ((pod.spec as Record<string, unknown>)?.volumes ?? []) as Record<
    string,
    Record<string, unknown>
  >[];
  const namespace = pod.metadata.namespace;
  // `auto` is no image: only Istio's injector replaces it, so without injection the pull fails.
  const containers = (pod.spec as { containers?: { image?: string }[] })?.containers ?? [];
  if (containers.some((c) => c.image === 'auto')) return false;
  return volumes.every((volume) => {
    if (volume.configMap) {
      return (
        volume.configMap.optional === true ||
        !!getObject(state, 'ConfigMap', namespace, String(volume.configMap.name))
      );
    }
    if (volume.secret) {
      return (
        volume.secret.optional === true ||
        !!getObject(state, 'Secret', namespace, String(volume.secret.secretName))
      );
    }
    return true;
  });
}

/** The object as the API server returns it: with the status fields the cluster computes. */
export function withStatus(state: ClusterState, object: KubeObject): KubeObject {
  if (object.kind === 'Pod') {
    const running = podRunning(state, object);
    const containers = ((object.spec as Record<string, unknown>)?.containers ?? []) as {
      name: string;
      image?: string;
    }[];
    const h = hashBytes(object.metadata.name);
    return {
      ...object,
      status: {
        phase: running ? 'Running' : 'Pending',
        hostIP: '10.0.2.15',
        podIP: `10.244.0.${2 + (h[0]! % 250)}`,
        containerStatuses: containers.map((c) => ({
          name: c.name,
          image: c.image,
          ready: running,
          restartCount: 0,
          state: running ? { running: {} } : { waiting: { reason: 'ContainerCreating' } },
        })),
      },
    };
  }
  if (object.kind === 'Deployment') {
    const pods = podsOf(state, object.metadata.namespace!, object.metadata.name);
    const ready = pods.filter((p) => podRunning(state, p)).length;
    const replicas = (object.spec as { replicas?: number } | undefined)?.replicas ?? 1;
    return {
      ...object,
      status: {
        observedGeneration: object.metadata.generation,
        replicas: pods.length,
        updatedReplicas: pods.length,
        readyReplicas: ready,
        availableReplicas: ready,
        conditions: [{ type: 'Available', status: ready >= replicas ? 'True' : 'False' }],
      },
    };
  }
  return object;
}

/** Matches kubectl label selectors: `a=b`, `a==b`, `a!=b`, `a`, `!a`, comma-separated (all must hold). */
export function matchesSelector(labels: Record<string, string> | undefined, selector: string): boolean {
  const own = labels ?? {};
  return selector
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .every((term) => {
      const neq = /^([^!=]+)!=(.*)$/.exec(term);
      if (neq) return own[neq[1]!.trim()] !== neq[2]!.trim();
      const eq = /^([^!=]+)==?(.*)$/.exec(term);
      if (eq) return own[eq[1]!.trim()] === eq[2]!.trim();
      if (term.startsWith('!')) return !(term.slice(1) in own);
      return term in own;
    });
}

/** Labels of the Istio deployments and the Services istioctl creates for them. */
export const ISTIO_COMPONENTS: Record<
  string,
  {
    labels: Record<string, string>;
    container: string;
    ports: { name: string; port: number; targetPort: number }[];
  }
> = {
  istiod: {
    labels: { app: 'istiod', istio: 'pilot' },
    container: 'discovery',
    ports: [
      { name: 'grpc-xds', port: 15010, targetPort: 15010 },
      { name: 'https-dns', port: 15012, targetPort: 15012 },
      { name: 'https-webhook', port: 443, targetPort: 15017 },
      { name: 'http-monitoring', port: 15014, targetPort: 15014 },
    ],
  },
  'istio-egressgateway': {
    labels: { app: 'istio-egressgateway', istio: 'egressgateway' },
    container: 'istio-proxy',
    ports: [
      { name: 'http2', port: 80, targetPort: 8080 },
      { name: 'https', port: 443, targetPort: 8443 },
    ],
  },
  'istio-ingressgateway': {
    labels: { app: 'istio-ingressgateway', istio: 'ingressgateway' },
    container: 'istio-proxy',
    ports: [
      { name: 'status-port', port: 15021, targetPort: 15021 },
      { name: 'http2', port: 80, targetPort: 8080 },
      { name: 'https', port: 443, targetPort: 8443 },
    ],
  },
};

/** The Deployment and Service istioctl creates for one component, with `labels` for its pods. */
export function istioComponentObjects(
  name: string,
  namespace: string,
  componentLabels: Record<string, string> = ISTIO_COMPONENTS[name]!.labels,
  /** Of a revisioned install: istiod is istiod-<revision>, and every component is labelled with it. */
  revision?: string,
): KubeObject[] {
  const { container, ports } = ISTIO_COMPONENTS[name]!;
  const labels = revision ? { ...componentLabels, 'istio.io/rev': revision } : componentLabels;
  const image =
    name === 'istiod' ? `docker.io/istio/pilot:${ISTIO_VERSION}` : `docker.io/istio/proxyv2:${ISTIO_VERSION}`;
  if (revision && name === 'istiod') name = `istiod-${revision}`;
  return [
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name, namespace, labels },
      spec: {
        replicas: 1,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels: { ...labels, 'sidecar.istio.io/inject': 'false' } },
          spec: { serviceAccountName: name, containers: [{ name: container, image }] },
        },
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, namespace, labels },
      spec: {
        type: name === 'istio-ingressgateway' ? 'LoadBalancer' : 'ClusterIP',
        selector: labels,
        ports: ports.map((p) => ({ ...p, protocol: 'TCP' })),
      },
    },
  ];
}

/**
 * The objects as istiod's proxies see them at `now`: Istio's configuration reaches the sidecars and the
 * gateways `delayMs` after it was applied (istiod debounces changes, builds and pushes the new config), so
 * an Istio object newer than that is not there yet, and one deleted since is still there. Oldest first.
 */
export function meshView(state: ClusterState, now: number, delayMs: number): KubeObject[] {
  const istioKinds = new Set(KINDS.filter((k) => k.istio).map((k) => k.kind));
  const deleted = Object.values(state.deleted ?? {}).filter((s) => s.deletedAt > now - delayMs);
  return [...Object.values(state.objects), ...deleted]
    .filter((s) => !istioKinds.has(s.object.kind) || (s.appliedAt ?? 0) <= now - delayMs)
    .sort((a, b) => a.seq - b.seq)
    .map((s) => s.object);
}

/** The installation as the mesh model needs it: the outbound policy and the gateway Deployments. */
export function meshIstio(
  state: ClusterState,
): { outboundTrafficPolicy: IstioInstall['outboundTrafficPolicy']; gateways: string[] } | undefined {
  if (!state.istio) return undefined;
  return {
    outboundTrafficPolicy: state.istio.outboundTrafficPolicy,
    gateways: state.istio.components.filter((c) => c !== 'istiod').map((c) => `istio-system/${c}`),
  };
}
