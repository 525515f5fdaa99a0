/**
 * `istioctl` of the local lab (run through sim/bin/istioctl-local), for what the lab's actions ask of it:
 * - `install -y --set profile=P --set meshConfig.K=V ...`: sim/lib/local-istio.ts (Istio's CRDs and the
 *   profile's objects applied with the real kubectl, the real istiod started with the mesh config);
 * - `proxy-config listeners TARGET [-n NS] -o json`: the listeners the running istiod sends that pod's
 *   proxy (a gateway pod as a router, any other as a sidecar), fetched over xDS by `istio-oracle xds`;
 * - `version --remote=false`: the Istio the binaries are built from.
 */
import path from 'node:path';
import { execa } from 'execa';
import { projectRoot } from '../src/config.js';
import { findGoTools } from '../src/lab/go-tools.js';
import { KUBE_TOOLS } from '../src/lab/kube-tools.js';
import { proxyOfPod, runningPodOf, type KubeGet, type PodJson } from '../src/mesh/live-mesh.js';
import { ensureOracle, runLiveOracle, type XdsProxy } from '../src/mesh/oracle.js';
import { fail, simEnv } from './lib/env.js';
import { outboundPolicyOf, runningIstiod } from './lib/istiod.js';
import { installLocalIstio } from './lib/local-istio.js';
import { flagValue, parseArgs, UsageError, type ParsedArgs } from './lib/pflag.js';
import { runAsProcess } from './lib/tool-io.js';

const FLAGS = {
  kubeconfig: { value: true, short: 'c' },
  context: { value: true },
  namespace: { value: true, short: 'n' },
  istioNamespace: { value: true, short: 'i' },
  set: { value: true, short: 's' },
  'skip-confirmation': { value: false, short: 'y' },
  remote: { value: true, optional: 'true' },
  output: { value: true, short: 'o' },
};

/** The Istio module the oracle and istiod are built from (its go.mod pins it). */
const ISTIO_BUILD = 'master snapshot v0.0.0-20260827124520-eed52ebb66ad';

async function main(): Promise<void> {
  let args: ParsedArgs;
  try {
    args = parseArgs(process.argv.slice(2), FLAGS);
  } catch (err) {
    if (err instanceof UsageError) fail(`Error: ${err.message}`);
    throw err;
  }
  const [command, sub, target] = args.positionals;
  const env = simEnv();
  const tools = await findGoTools(projectRoot(), KUBE_TOOLS);
  if (!tools)
    fail('the local lab has no kubectl yet: `vagrant up` of its k8s machine builds it (tools/kube)');
  const kubectl = path.join(tools, 'kubectl');
  const kubeconfig = flagValue(args, 'kubeconfig') ?? process.env.KUBECONFIG ?? '';
  const get: KubeGet = async (getArgs) => {
    const result = await execa(kubectl, ['--kubeconfig', kubeconfig, 'get', ...getArgs, '-o', 'json'], {
      reject: false,
    });
    if (result.exitCode !== 0) fail(`Error: ${result.stderr.trim()}`);
    return JSON.parse(result.stdout) as unknown;
  };
  switch (command) {
    case 'version':
      process.stdout.write(`client version: ${ISTIO_BUILD} (istioctl of the local lab)\n`);
      return;
    case 'install': {
      const sets = Object.fromEntries(
        (args.flags.get('set') ?? []).map((kv) => [
          kv.slice(0, kv.indexOf('=')),
          kv.slice(kv.indexOf('=') + 1),
        ]),
      );
      const { profile = 'default', ...rest } = sets;
      try {
        await installLocalIstio({
          simState: env.stateDir,
          kubectl,
          kubeconfig,
          profile,
          set: rest,
          log: (line) => process.stdout.write(`${line}\n`),
        });
      } catch (err) {
        fail(`Error: ${err instanceof Error ? err.message : String(err)}`);
      }
      return;
    }
    case 'proxy-config':
    case 'pc': {
      if (sub !== 'listeners' && sub !== 'listener')
        fail(`Error: the local lab's istioctl serves only proxy-config listeners`);
      if (!target) fail('Error: pod name or --file is required');
      const istiod = runningIstiod(env.stateDir);
      if (!istiod) fail('Error: no running Istiod pod in "istio-system"');
      const proxy = await proxyFor(get, target, flagValue(args, 'namespace') ?? 'default');
      const gateway = /gateway$/.test(proxy.labels.istio ?? '');
      const empty: XdsProxy = { pod: '', namespace: '', ip: '', labels: {} };
      const answer = await runLiveOracle(await ensureOracle(projectRoot()), {
        istiod: `127.0.0.1:${istiod.grpcPort}`,
        outboundTrafficPolicy: outboundPolicyOf(istiod.mesh),
        sidecar: gateway ? empty : proxy,
        gateway: gateway ? proxy : empty,
        vips: {},
        probes: [],
        dump: true,
      });
      const listeners = answer.listeners?.[gateway ? 'gateway' : 'sidecar'] ?? [];
      process.stdout.write(`${JSON.stringify(listeners, null, 4)}\n`);
      return;
    }
    default:
      fail(
        `Error: the local lab's istioctl runs install, proxy-config listeners and version, not ${command ?? '(none)'}`,
      );
  }
}

/** The pod `TARGET` names: `deploy/NAME` (its newest running pod), `POD.NAMESPACE` or `POD`. */
async function proxyFor(get: KubeGet, target: string, namespace: string): Promise<XdsProxy> {
  if (target.startsWith('deploy/') || target.startsWith('deployment/')) {
    const name = target.slice(target.indexOf('/') + 1);
    const pod = await runningPodOf(get, namespace, name);
    if (!pod) fail(`Error: no running pods of deployment ${name} in ${namespace}`);
    return proxyOfPod(pod);
  }
  const dot = target.lastIndexOf('.');
  const [pod, ns] = dot === -1 ? [target, namespace] : [target.slice(0, dot), target.slice(dot + 1)];
  return proxyOfPod((await get(['-n', ns, 'pod', pod])) as PodJson);
}

// Always a process of its own: the stand-in host serves the model cluster's tools, not the local lab's.
runAsProcess(main, 'Error: ');
