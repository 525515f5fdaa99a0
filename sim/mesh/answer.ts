/**
 * The model's answer for a set of manifests, in the shape the Istio oracle answers in: the documents
 * applied, in order, to a fresh simulated cluster with Istio's demo profile installed (as the stand-in
 * istioctl installs it), then every probed host walked through the model. Used by `mesh.check` on the
 * simulated lab when the oracle is not built, and by the differential tests.
 */
import { DEFAULT_CLIENT, type KubeDocument, type MeshSettings } from '../../src/mesh/manifest-set.js';
import type { MeshProbe } from '../../src/mesh/oracle.js';
import type { MeshVerdict } from '../../src/mesh/verdict.js';
import {
  applyManifest,
  initialCluster,
  istioComponentObjects,
  ISTIO_VERSION,
  meshIstio,
  meshView,
} from '../lib/kube-cluster.js';
import { labProxyListeners } from '../lib/kube-client.js';
import { meshVerdicts, type PushStatus } from './model.js';
import type { MeshInput } from './types.js';

/** The lab addresses the model writes into verdicts (the proof of concept's), and the proxy's listeners. */
export function modelLab(): MeshInput['lab'] {
  return {
    nodeIp: '192.168.56.20',
    proxy: { ip: '192.168.56.10', listeners: labProxyListeners() },
    app: { ip: '192.168.56.30', port: 443, httpPort: 80 },
  };
}

export interface ModelAnswer {
  verdicts: MeshVerdict[];
  pushStatus: PushStatus;
  nacks: { sidecar: string[]; gateway: string[] };
  /** Objects the simulated API server refused, with its message. */
  rejected: string[];
}

export function modelAnswer(
  documents: KubeDocument[],
  settings: MeshSettings,
  probes: MeshProbe[],
  lab: MeshInput['lab'] = modelLab(),
): ModelAnswer {
  const state = initialCluster();
  state.istio = {
    version: ISTIO_VERSION,
    profile: 'demo',
    set: {},
    components: ['istiod', 'istio-egressgateway'],
    outboundTrafficPolicy: settings.outboundTrafficPolicy,
    accessLogFile: '/dev/stdout',
  };
  const rejected: string[] = [];
  const apply = (doc: unknown, file: string) => {
    const result = applyManifest(state, doc, { file });
    if (result.error) rejected.push(result.error);
  };
  apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'istio-system' } }, 'istioctl');
  const own = settings.ownGateway;
  for (const name of ['istiod', 'istio-egressgateway']) {
    const labels = name === 'istio-egressgateway' && !own ? settings.gatewayLabels : undefined;
    for (const object of istioComponentObjects(name, 'istio-system', labels)) apply(object, 'istioctl');
  }
  if (own) {
    // As gateway.deploy leaves it: the demo gateway's Deployment and Service, renamed, in the namespace, with
    // the gateway injection template.
    if (own.namespace !== 'istio-system')
      apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: own.namespace } }, 'kube.namespace');
    for (const object of istioComponentObjects(
      'istio-egressgateway',
      own.namespace,
      settings.gatewayLabels,
    )) {
      const spec = object.spec as { template?: { metadata?: { annotations?: Record<string, string> } } };
      if (spec.template?.metadata)
        spec.template.metadata.annotations = { 'inject.istio.io/templates': 'gateway' };
      apply({ ...object, metadata: { ...object.metadata, name: own.service } }, 'gateway.deploy');
    }
  }
  // The scenario's namespaces exist, with injection on, as its kube.namespace step leaves them.
  const namespaces = new Set(documents.map((d) => d.metadata?.namespace).filter((n) => n !== undefined));
  for (const name of namespaces) {
    if (name === 'istio-system' || name === 'default') continue;
    if (documents.some((d) => d.kind === 'Namespace' && d.metadata?.name === name)) continue;
    apply(
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: { 'istio-injection': 'enabled' } } },
      'kube.namespace',
    );
  }
  for (const doc of documents) apply(doc, 'manifests');
  const client = settings.client ?? DEFAULT_CLIENT;
  const answer = meshVerdicts(
    {
      // Everything applied counts: the question is what the config does once the proxies have it.
      resources: meshView(state, Date.now(), 0),
      istio: meshIstio(state),
      lab,
      source: { pod: client.pod, namespace: client.namespace, labels: client.labels, sidecar: true },
      now: new Date(0),
      sourcePort: 40_000,
    },
    probes,
  );
  return { ...answer, rejected };
}
