/**
 * Stand-in `istioctl` of the simulated lab: `install` (alias `apply`) with profiles and `--set`,
 * `uninstall --purge`, `version` and `proxy-config listeners`, against the simulated cluster. An installation records its mesh
 * settings (outbound traffic policy, access log) for the mesh model, serves Istio's CRDs, and creates
 * the profile's deployments and Services in istio-system, pruning components a new install drops.
 * `verify-install` is gone since Istio 1.24, so it is an unknown command here too. `proxy-config listeners`
 * prints the TCP listeners the mesh model builds for a pod's proxy from the config that has reached it
 * (Istio config takes the lab's `sim.configDelay` to arrive, as istiod's pushes do).
 */
import { simulateCall } from '../lib/call.js';
import { abort } from '../lib/exit.js';
import { simEnv, type SimEnv } from '../lib/env.js';
import { clusterProblem, labPoints } from '../lib/kube-client.js';
import {
  applyManifest,
  CLUSTER_STATE,
  deleteObject,
  getObject,
  initialCluster,
  ISTIO_COMPONENTS,
  istioComponentObjects,
  ISTIO_VERSION,
  KINDS,
  listObjects,
  meshIstio,
  meshView,
  podRunning,
  podsOf,
  type ClusterState,
  type IstioInstall,
  type KubeObject,
} from '../lib/kube-cluster.js';
import { isGatewayTemplate, proxyListeners } from '../mesh/model.js';
import { toMs } from '../../src/duration.js';
import { flagOn, flagValue, parseArgs, UsageError, type FlagSpec, type ParsedArgs } from '../lib/pflag.js';
import { readState, updateState } from '../lib/state.js';
import { meshConfigMap, meshConfigOf } from '../lib/mesh-config.js';
import { exit, out, setCommand, toolCall } from '../lib/tool-io.js';

const FLAGS: Record<string, FlagSpec> = {
  kubeconfig: { value: true, short: 'c' },
  context: { value: true },
  istioNamespace: { value: true, short: 'i' },
  namespace: { value: true, short: 'n' },
  'skip-confirmation': { value: false, short: 'y' },
  set: { value: true, short: 's' },
  filename: { value: true, short: 'f' },
  revision: { value: true, short: 'r' },
  purge: { value: false },
  'dry-run': { value: false },
  'readiness-timeout': { value: true },
  remote: { value: false },
  short: { value: false },
  output: { value: true, short: 'o' },
  vklog: { value: true },
};

/** Components per profile (https://istio.io/latest/docs/setup/additional-setup/config-profiles/). */
const PROFILES: Record<string, string[]> = {
  default: ['istiod', 'istio-ingressgateway'],
  demo: ['istiod', 'istio-ingressgateway', 'istio-egressgateway'],
  minimal: ['istiod'],
  remote: [],
  empty: [],
  preview: ['istiod', 'istio-ingressgateway'],
  ambient: ['istiod'],
  stable: ['istiod', 'istio-ingressgateway'],
};

const INSTALLED_LINE: Record<string, string> = {
  istiod: '✔ Istiod installed 🧠',
  'istio-egressgateway': '✔ Egress gateways installed 🛫',
  'istio-ingressgateway': '✔ Ingress gateways installed 🛬',
};

const NAMESPACE = 'istio-system';

/** One call of the stand-in istioctl: as its own process (sim/istioctl.ts) or in the lab's stand-in host. */
export async function istioctl(): Promise<void> {
  const { argv } = toolCall();
  const env = simEnv();
  await simulateCall(env, 'istioctl', argv);
  let args: ParsedArgs;
  try {
    args = parseArgs(argv, FLAGS);
  } catch (err) {
    if (err instanceof UsageError) abort(`Error: ${err.message}`);
    throw err;
  }
  const [command] = args.positionals;
  if (command) setCommand(command);
  if (!command) {
    out('Istio configuration command line utility.\n\nUsage:\n  istioctl [command]\n');
    return;
  }
  if (!['install', 'apply', 'uninstall', 'version', 'proxy-config', 'pc'].includes(command)) {
    abort(`Error: unknown command "${command}" for "istioctl"\nRun 'istioctl --help' for usage.`);
  }
  const lab = labPoints(env.lab);
  const problem = clusterProblem(env.stateDir, lab, flagValue(args, 'kubeconfig'));
  if (command === 'version') {
    const state = readState<ClusterState>(env.stateDir, CLUSTER_STATE, initialCluster());
    const lines = [`client version: ${ISTIO_VERSION}`];
    const remote = flagValue(args, 'remote') !== 'false';
    if (remote && !problem && state.istio && !flagOn(args, 'short')) {
      const proxies = listObjects(state, 'Pod').filter((s) =>
        ((s.object.spec as { containers?: { name: string }[] })?.containers ?? []).some(
          (c) => c.name === 'istio-proxy',
        ),
      ).length;
      lines.push(
        `control plane version: ${state.istio.version}`,
        `data plane version: ${state.istio.version} (${proxies} proxies)`,
      );
    }
    out(lines.join('\n') + '\n');
    return;
  }
  if (problem) {
    abort(`Error: check minimum supported Kubernetes version: error getting Kubernetes version: ${problem}`);
  }
  if (command === 'uninstall') return uninstall(env.stateDir, args);
  if (command === 'proxy-config' || command === 'pc') return proxyConfig(env, args);
  return install(env.stateDir, args);
}

async function install(stateDir: string, args: ParsedArgs): Promise<void> {
  if (args.flags.has('filename'))
    abort('Error: the simulated istioctl takes its settings from --set only, not IstioOperator files');
  const set: Record<string, string> = {};
  let profile = 'default';
  for (const item of args.flags.get('set') ?? []) {
    const at = item.indexOf('=');
    if (at <= 0) abort(`Error: --set ${item}: expected path=value`);
    const key = item.slice(0, at);
    const value = item.slice(at + 1);
    if (key === 'profile') profile = value;
    else set[key] = value;
  }
  if (!PROFILES[profile]) {
    abort(
      `Error: generate config: profile "${profile}" not found; profiles: ${Object.keys(PROFILES).sort().join(', ')}`,
    );
  }
  const mode = set['meshConfig.outboundTrafficPolicy.mode'] ?? 'ALLOW_ANY';
  if (mode !== 'ALLOW_ANY' && mode !== 'REGISTRY_ONLY') {
    abort(
      `Error: generate config: meshConfig.outboundTrafficPolicy.mode: invalid value "${mode}" (ALLOW_ANY or REGISTRY_ONLY)`,
    );
  }
  const components = componentsOf(profile, set);
  // A revision (`--revision`, or `--set revision=`) names istiod `istiod-<revision>`, labels it with
  // `istio.io/rev`, and gives it a mesh config of its own, `istio-<revision>`.
  const revision = flagValue(args, 'revision') ?? set.revision;
  if (revision !== undefined && !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(revision))
    abort(`Error: generate config: invalid revision specified: ${revision}`);
  if (!flagOn(args, 'skip-confirmation')) {
    out(
      `This will install the Istio ${ISTIO_VERSION} profile "${profile}" into the cluster. Proceed? (y/N) `,
    );
    // The stand-in is never interactive: no answer is a no, as with an empty stdin.
    out('\nCancelled.\n');
    exit(1);
  }
  if (flagOn(args, 'dry-run')) {
    out('✔ Istio core installed ⛵️\n✔ Installation complete\n');
    return;
  }
  const settings: IstioInstall = {
    version: ISTIO_VERSION,
    profile,
    set,
    components,
    outboundTrafficPolicy: mode,
    accessLogFile: set['meshConfig.accessLogFile'] ?? (profile === 'demo' ? '/dev/stdout' : ''),
    ...(revision ? { revision } : {}),
  };
  await updateState(stateDir, CLUSTER_STATE, initialCluster(), (state) => {
    for (const name of Object.keys(ISTIO_COMPONENTS)) {
      if (!components.includes(name)) {
        deleteObject(state, 'Deployment', NAMESPACE, name);
        deleteObject(state, 'Service', NAMESPACE, name);
      }
    }
    state.istio = settings;
    ensure(state, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NAMESPACE } });
    // Real istioctl writes the mesh config istiod reads: what istio.install checks on an existing lab.
    const mesh = meshConfigOf(set);
    if (settings.accessLogFile) mesh.accessLogFile = settings.accessLogFile;
    ensure(state, meshConfigMap(mesh, revision));
    for (const name of components) {
      for (const object of istioComponentObjects(name, NAMESPACE, undefined, revision)) ensure(state, object);
    }
  });
  const lines = [
    '✔ Istio core installed ⛵️',
    ...components.map((c) => INSTALLED_LINE[c]!).filter(Boolean),
    '✔ Installation complete',
  ];
  out(lines.join('\n') + '\n');
}

/** `istioctl proxy-config listeners TARGET [-n NS] [-o json]`: TARGET is a pod (`name[.ns]`) or `deploy/NAME`. */
function proxyConfig(env: SimEnv, args: ParsedArgs): void {
  const [, kind, target] = args.positionals;
  if (!kind || !['listeners', 'listener', 'l'].includes(kind)) {
    abort(`Error: the simulated istioctl shows listeners only (proxy-config listeners), not "${kind ?? ''}"`);
  }
  if (!target) abort('Error: pod name or --file is required');
  const state = readState<ClusterState>(env.stateDir, CLUSTER_STATE, initialCluster());
  let namespace = flagValue(args, 'namespace') ?? 'default';
  let pod: KubeObject | undefined;
  if (target.startsWith('deploy/') || target.startsWith('deployment/')) {
    const name = target.slice(target.indexOf('/') + 1);
    pod = podsOf(state, namespace, name).find((p) => podRunning(state, p));
    if (!pod) abort(`Error: no running pods found for deployment ${name} in namespace ${namespace}`);
  } else {
    const [name, ns] = target.split('.', 2) as [string, string | undefined];
    namespace = ns ?? namespace;
    pod = getObject(state, 'Pod', namespace, name)?.object;
    if (!pod) abort(`Error: pods "${name}" not found`);
  }
  const containers = ((pod.spec as { containers?: { name: string }[] })?.containers ?? []).map((c) => c.name);
  if (!containers.includes('istio-proxy')) {
    abort(
      `Error: failed to execute command on sidecar: container istio-proxy is not valid for pod ${pod.metadata.name}`,
    );
  }
  const resources = meshView(state, Date.now(), toMs(env.sim.configDelay));
  const istio = meshIstio(state);
  // The pod's ReplicaSet is `<deployment>-<pod-template-hash>`.
  const hash = pod.metadata.labels?.['pod-template-hash'] ?? '';
  const owner = (pod.metadata.ownerReferences?.[0]?.name ?? '').replace(`-${hash}`, '');
  const gateway =
    (namespace === NAMESPACE && istio?.gateways.includes(`${NAMESPACE}/${owner}`)) ||
    isGatewayTemplate(pod.metadata.annotations);
  const listeners = proxyListeners(
    { resources, istio },
    gateway
      ? { gateway: { namespace, labels: pod.metadata.labels ?? {} } }
      : { sidecar: { pod: pod.metadata.name, namespace, labels: pod.metadata.labels ?? {} } },
  );
  if (flagValue(args, 'output') === 'json') {
    out(JSON.stringify(listeners, null, 2) + '\n');
    return;
  }
  const rows = [['ADDRESSES', 'PORT', 'MATCH', 'DESTINATION']];
  for (const l of listeners as {
    address: { socketAddress: { address: string; portValue: number } };
    filterChains: {
      filterChainMatch: { serverNames?: string[] };
      filters: { typedConfig: { cluster?: string } }[];
    }[];
  }[]) {
    for (const c of l.filterChains) {
      rows.push([
        l.address.socketAddress.address,
        String(l.address.socketAddress.portValue),
        c.filterChainMatch.serverNames ? `SNI: ${c.filterChainMatch.serverNames.join(',')}` : 'ALL',
        `Cluster: ${c.filters[0]?.typedConfig.cluster ?? ''}`,
      ]);
    }
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  out(
    rows
      .map((r) =>
        r
          .map((c, i) => c.padEnd(widths[i]!))
          .join(' ')
          .trimEnd(),
      )
      .join('\n') + '\n',
  );
}

function ensure(state: ClusterState, manifest: Parameters<typeof applyManifest>[1]): void {
  const result = applyManifest(state, manifest, { file: 'istioctl' });
  if (result.error) abort(`Error: failed to install manifests: ${result.error}`);
}

/** The profile's components, with `components.<kind>Gateways[0].enabled` overrides. */
function componentsOf(profile: string, set: Record<string, string>): string[] {
  const components = new Set(PROFILES[profile]);
  const toggle = (key: string, name: string) => {
    if (set[key] === 'true') components.add(name);
    if (set[key] === 'false') components.delete(name);
  };
  toggle('components.egressGateways[0].enabled', 'istio-egressgateway');
  toggle('components.ingressGateways[0].enabled', 'istio-ingressgateway');
  toggle('components.pilot.enabled', 'istiod');
  return Object.keys(ISTIO_COMPONENTS).filter((c) => components.has(c));
}

async function uninstall(stateDir: string, args: ParsedArgs): Promise<void> {
  if (!flagOn(args, 'purge') && !args.flags.has('revision') && !args.flags.has('filename')) {
    abort('Error: at least one of the --filename, --revision or --purge flags must be set');
  }
  if (!flagOn(args, 'skip-confirmation')) {
    out('All Istio resources will be pruned from the cluster\nProceed? (y/N) \nCancelled.\n');
    exit(1);
  }
  await updateState(stateDir, CLUSTER_STATE, initialCluster(), (state) => {
    // Removing Istio's CRDs removes every Istio object with them.
    const istioKinds = new Set(KINDS.filter((k) => k.istio).map((k) => k.kind));
    for (const stored of Object.values(state.objects)) {
      const { kind, metadata } = stored.object;
      if (istioKinds.has(kind)) deleteObject(state, kind, metadata.namespace, metadata.name);
    }
    for (const name of Object.keys(ISTIO_COMPONENTS)) {
      deleteObject(state, 'Deployment', NAMESPACE, name);
      deleteObject(state, 'Service', NAMESPACE, name);
    }
    deleteObject(state, 'ConfigMap', NAMESPACE, 'istio');
    if (
      getObject(state, 'Namespace', undefined, NAMESPACE) &&
      listObjects(state, 'Pod', NAMESPACE).length === 0
    ) {
      deleteObject(state, 'Namespace', undefined, NAMESPACE);
    }
    delete state.istio;
  });
  out('✔ Uninstall complete\n');
}
