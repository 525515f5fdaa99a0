/**
 * The real control plane the local lab runs (labs/local.yaml), as pinned Go tool sets:
 * - `kube` (tools/kube): etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kubectl of
 *   Kubernetes v1.36.1, and KWOK, which plays the nodes and pod lifecycles a kubelet would (its stage
 *   definitions are copied beside the binaries);
 * - `istiod` (tools/istio-oracle, the same Istio the oracle is built from): pilot-discovery, and Istio's
 *   CRDs out of its Helm chart.
 */
import { LabConfigError } from '../errors.js';
import type { GoToolSet } from './go-tools.js';

export const KUBE_VERSION = 'v1.36.1';

const [major, minor] = KUBE_VERSION.slice(1).split('.') as [string, string];
// Without these, the binaries report v0.0.0-master and kubectl refuses the API server's version.
const versionFlags = ['k8s.io/component-base/version', 'k8s.io/client-go/pkg/version'].flatMap((pkg) => [
  `-X ${pkg}.gitVersion=${KUBE_VERSION}`,
  `-X ${pkg}.gitMajor=${major}`,
  `-X ${pkg}.gitMinor=${minor}`,
  `-X ${pkg}.gitTreeState=clean`,
]);

const KWOK_STAGES = 'sigs.k8s.io/kwok';

export const KUBE_TOOLS: GoToolSet = {
  name: 'kube',
  module: 'kube',
  title: `Kubernetes ${KUBE_VERSION} (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl) and KWOK`,
  programs: {
    etcd: 'go.etcd.io/etcd/server/v3',
    'kube-apiserver': 'k8s.io/kubernetes/cmd/kube-apiserver',
    'kube-controller-manager': 'k8s.io/kubernetes/cmd/kube-controller-manager',
    'kube-scheduler': 'k8s.io/kubernetes/cmd/kube-scheduler',
    kubectl: 'k8s.io/kubernetes/cmd/kubectl',
    kwok: 'sigs.k8s.io/kwok/cmd/kwok',
  },
  ldflags: ['-s', '-w', ...versionFlags],
  files: {
    'stage-node-initialize.yaml': [KWOK_STAGES, 'kustomize/stage/node/fast/node-initialize.yaml'],
    'stage-node-heartbeat.yaml': [KWOK_STAGES, 'kustomize/stage/node/heartbeat/node-heartbeat.yaml'],
    'stage-pod-ready.yaml': [KWOK_STAGES, 'kustomize/stage/pod/fast/pod-ready.yaml'],
    'stage-pod-complete.yaml': [KWOK_STAGES, 'kustomize/stage/pod/fast/pod-complete.yaml'],
    'stage-pod-delete.yaml': [KWOK_STAGES, 'kustomize/stage/pod/fast/pod-delete.yaml'],
  },
  override: 'TUNNEL_LAB_KUBE_TOOLS',
  purpose: 'use the simulated lab (--lab sim), which needs no build',
  firstBuild: 'about 10 minutes on two cores',
  error: LabConfigError,
};

const ISTIO = 'istio.io/istio';

export const ISTIOD_TOOLS: GoToolSet = {
  name: 'istiod',
  module: 'istio-oracle',
  title: 'istiod (pilot-discovery) and Istio CRDs',
  programs: { 'pilot-discovery': 'istio.io/istio/pilot/cmd/pilot-discovery' },
  files: { 'crd-all.gen.yaml': [ISTIO, 'manifests/charts/base/files/crd-all.gen.yaml'] },
  ownSources: false,
  override: 'TUNNEL_LAB_ISTIOD_TOOLS',
  purpose: 'use the simulated lab (--lab sim), which needs no build',
  firstBuild: 'a few minutes',
  error: LabConfigError,
};
