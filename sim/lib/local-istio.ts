/**
 * `istioctl install` for the local lab: Istio's CRDs (from the pinned Istio module), the `istio-system`
 * objects of a profile (the `istio` mesh ConfigMap; istiod's and the gateways' Deployments and Services,
 * whose pods KWOK plays) applied with the real kubectl, and the real istiod started with that mesh config.
 *
 * Sidecar injection: istiod's injection webhook is not served here (no pod could run its template's
 * containers anyway). In its place a MutatingAdmissionPolicy, evaluated by the API server itself, adds
 * the `istio-proxy` container, the `istio-init` init container, the `security.istio.io/tlsMode: istio`
 * label and the status annotation to pods created in namespaces labelled `istio-injection=enabled`,
 * unless the pod opts out with `sidecar.istio.io/inject: "false"`, as the webhook does.
 */
import path from 'node:path';
import { execa } from 'execa';
import { stringify } from 'yaml';
import { projectRoot } from '../../src/config.js';
import { ensureGoTools } from '../../src/lab/go-tools.js';
import { ISTIOD_TOOLS } from '../../src/lab/kube-tools.js';
import { runningControlPlane } from './control-plane.js';
import { startIstiod } from './istiod.js';
import { meshConfigMap, meshConfigOf as meshConfigFromSet } from './mesh-config.js';

/** The release the stand-in images name (what labs/local.yaml pins as `istio.version`). */
export const PROXY_IMAGE_TAG = '1.28.3';

type Doc = Record<string, unknown>;

/** The gateways each profile installs, as istioctl's profiles do. */
const PROFILE_GATEWAYS: Record<string, string[]> = {
  demo: ['istio-egressgateway', 'istio-ingressgateway'],
  default: ['istio-ingressgateway'],
  minimal: [],
};

export interface LocalInstall {
  profile: string;
  /** `--set` values; `meshConfig.*` go into the mesh config, anything else is refused. */
  set: Record<string, string>;
}

/** The mesh config `--set meshConfig.a.b=v` values make (nested keys); other values are refused. */
export function meshConfigOf(set: Record<string, string>): Doc {
  const other = Object.keys(set).find((key) => key !== 'profile' && !key.startsWith('meshConfig.'));
  if (other) throw new Error(`the local lab's istioctl sets only meshConfig.* values, not ${other}`);
  return meshConfigFromSet(set);
}

function deployment(name: string, labels: Record<string, string>, container: Doc): Doc {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: 'istio-system', labels },
    spec: {
      selector: { matchLabels: labels },
      template: {
        metadata: { labels: { ...labels, 'sidecar.istio.io/inject': 'false' } },
        spec: { containers: [container] },
      },
    },
  };
}

function service(name: string, labels: Record<string, string>, ports: Doc[], type = 'ClusterIP'): Doc {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: 'istio-system', labels },
    spec: { type, selector: labels, ports },
  };
}

const GATEWAYS: Record<string, { labels: Record<string, string>; ports: Doc[]; type: string }> = {
  'istio-egressgateway': {
    labels: { app: 'istio-egressgateway', istio: 'egressgateway' },
    ports: [
      { name: 'http2', port: 80, targetPort: 8080, protocol: 'TCP' },
      { name: 'https', port: 443, targetPort: 8443, protocol: 'TCP' },
    ],
    type: 'ClusterIP',
  },
  'istio-ingressgateway': {
    labels: { app: 'istio-ingressgateway', istio: 'ingressgateway' },
    ports: [
      { name: 'status-port', port: 15021, targetPort: 15021, protocol: 'TCP' },
      { name: 'http2', port: 80, targetPort: 8080, protocol: 'TCP' },
      { name: 'https', port: 443, targetPort: 8443, protocol: 'TCP' },
    ],
    type: 'LoadBalancer',
  },
};

/** The stand-in for istiod's sidecar injection webhook (see the module comment). */
export function injectionPolicy(): Doc[] {
  const image = `docker.io/istio/proxyv2:${PROXY_IMAGE_TAG}`;
  const optedOut = (field: string) =>
    `(has(object.metadata.${field}) && object.metadata.${field}.exists(k, k == 'sidecar.istio.io/inject' && object.metadata.${field}[k] == 'false'))`;
  const name = 'istio-sidecar-injector';
  return [
    {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'MutatingAdmissionPolicy',
      metadata: { name },
      spec: {
        matchConstraints: {
          resourceRules: [
            { apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'] },
          ],
        },
        matchConditions: [
          { name: 'not-opted-out', expression: `!${optedOut('labels')} && !${optedOut('annotations')}` },
          { name: 'not-injected', expression: "!object.spec.containers.exists(c, c.name == 'istio-proxy')" },
        ],
        failurePolicy: 'Fail',
        reinvocationPolicy: 'Never',
        mutations: [
          {
            patchType: 'ApplyConfiguration',
            applyConfiguration: {
              expression: `Object{
  metadata: Object.metadata{
    labels: {"security.istio.io/tlsMode": "istio"},
    annotations: {"sidecar.istio.io/status": "{\\"initContainers\\":[\\"istio-init\\"],\\"containers\\":[\\"istio-proxy\\"]}"}
  },
  spec: Object.spec{
    initContainers: [Object.spec.initContainers{name: "istio-init", image: "${image}"}],
    containers: [Object.spec.containers{name: "istio-proxy", image: "${image}"}]
  }
}`,
            },
          },
        ],
      },
    },
    {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'MutatingAdmissionPolicyBinding',
      metadata: { name },
      spec: {
        policyName: name,
        matchResources: { namespaceSelector: { matchLabels: { 'istio-injection': 'enabled' } } },
      },
    },
  ];
}

/** The `istio-system` objects of a profile with this mesh config. */
export function profileObjects(profile: string, mesh: Doc): Doc[] {
  const gateways = PROFILE_GATEWAYS[profile];
  if (!gateways) {
    throw new Error(
      `the local lab's istioctl knows the profiles ${Object.keys(PROFILE_GATEWAYS).join(', ')}, not ${profile}`,
    );
  }
  const proxy = (name: string) => ({ name, image: `docker.io/istio/proxyv2:${PROXY_IMAGE_TAG}` });
  const istiodLabels = { app: 'istiod', istio: 'pilot' };
  return [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'istio-system' } },
    meshConfigMap(mesh),
    deployment('istiod', istiodLabels, {
      name: 'discovery',
      image: `docker.io/istio/pilot:${PROXY_IMAGE_TAG}`,
    }),
    service('istiod', istiodLabels, [
      { name: 'grpc-xds', port: 15010, protocol: 'TCP' },
      { name: 'https-dns', port: 15012, protocol: 'TCP' },
      { name: 'https-webhook', port: 443, targetPort: 15017, protocol: 'TCP' },
      { name: 'http-monitoring', port: 15014, protocol: 'TCP' },
    ]),
    ...gateways.flatMap((name) => {
      const gw = GATEWAYS[name]!;
      return [deployment(name, gw.labels, proxy('istio-proxy')), service(name, gw.labels, gw.ports, gw.type)];
    }),
    ...injectionPolicy(),
  ];
}

export interface LocalInstallOptions extends LocalInstall {
  simState: string;
  kubectl: string;
  kubeconfig: string;
  /** One line per step, as istioctl prints them. */
  log: (line: string) => void;
}

/** Installs Istio on the local lab's cluster and (re)starts istiod with the mesh config. */
export async function installLocalIstio(options: LocalInstallOptions): Promise<void> {
  const mesh = meshConfigOf(options.set);
  const objects = profileObjects(options.profile, mesh);
  const kubectl = async (args: string[], input?: string) => {
    const result = await execa(options.kubectl, ['--kubeconfig', options.kubeconfig, ...args], {
      input,
      reject: false,
    });
    if (result.exitCode !== 0) throw new Error(`kubectl ${args.join(' ')}: ${result.stderr.trim()}`);
    return result.stdout;
  };
  const tools = await ensureGoTools(projectRoot(), ISTIOD_TOOLS);
  await kubectl(['apply', '--server-side', '--force-conflicts', '-f', path.join(tools, 'crd-all.gen.yaml')]);
  await kubectl(['wait', '--for=condition=Established', 'crd', '--all', '--timeout=60s']);
  options.log('✔ Istio core installed ⛵️');
  await kubectl(['apply', '-f', '-'], objects.map((o) => stringify(o)).join('---\n'));
  // istiod is the machine's: it reads the API server with the machine's own kubeconfig.
  const machine = runningControlPlane(options.simState)?.kubeconfig ?? options.kubeconfig;
  await startIstiod({ simState: options.simState, kubeconfig: machine, mesh });
  options.log('✔ Istiod installed 🧠');
  for (const name of PROFILE_GATEWAYS[options.profile]!) {
    options.log(`✔ ${name === 'istio-egressgateway' ? 'Egress' : 'Ingress'} gateways installed 🛫`);
  }
  options.log('✔ Installation complete');
}
