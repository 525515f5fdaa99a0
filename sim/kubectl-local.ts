/**
 * `kubectl` of the local lab (labs/local.yaml, run through sim/bin/kubectl-local): the real kubectl
 * v1.36.1 (tools/kube) for every command, except `exec`, which needs a container runtime the lab does
 * not have. For `exec`, the pod, its containers and its state come from the real API server as kubectl
 * would read them; the command must be curl. A curl in istiod's pod to its debug port reaches the real
 * istiod. Any other curl goes where istiod's config sends it: `istio-oracle xds` fetches the config of
 * the pod's sidecar and of the egress gateway pod from the running istiod and walks the request through
 * it; then the lab's machines answer (sim/lib/data-path.ts, sim/lib/pod-curl.ts).
 */
import { execa } from 'execa';
import path from 'node:path';
import { projectRoot } from '../src/config.js';
import { findGoTools } from '../src/lab/go-tools.js';
import { KUBE_TOOLS } from '../src/lab/kube-tools.js';
import { liveMeshRequest, runningPodOf, type KubeGet } from '../src/mesh/live-mesh.js';
import { DEMO_GATEWAY_LABELS } from '../src/mesh/manifest-set.js';
import { ensureOracle, runLiveOracle } from '../src/mesh/oracle.js';
import type { MeshVerdict } from '../src/mesh/verdict.js';
import { curlOutput, parseCurl, urlPort } from './lib/curl-cli.js';
import { outcomeOf } from './lib/data-path.js';
import { fail, simEnv } from './lib/env.js';
import { outboundPolicyOf, runningIstiod } from './lib/istiod.js';
import { labPoints, machineRunning } from './lib/kube-client.js';
import { flagOn, flagValue, parseArgs, type ParsedArgs } from './lib/pflag.js';
import { deliver, type ObjectLookup } from './lib/pod-curl.js';
import { publicAddress } from './mesh/model.js';
import { runAsProcess } from './lib/tool-io.js';

const EXEC_FLAGS = {
  kubeconfig: { value: true },
  context: { value: true },
  namespace: { value: true, short: 'n' },
  'request-timeout': { value: true },
  container: { value: true, short: 'c' },
  stdin: { value: false, short: 'i' },
  tty: { value: false, short: 't' },
  quiet: { value: false, short: 'q' },
};

interface Pod {
  metadata: { name: string; namespace: string; labels?: Record<string, string>; creationTimestamp?: string };
  spec: { containers: { name: string }[] };
  status?: { phase?: string; podIP?: string };
}

/** Ends like kubectl after the command in the container: its output, then its exit code passed on. */
function terminate(stdout: string, stderr: string, exitCode: number): never {
  if (stdout) process.stdout.write(stdout);
  if (stderr) process.stderr.write(stderr);
  if (exitCode !== 0) process.stderr.write(`command terminated with exit code ${exitCode}\n`);
  process.exit(exitCode);
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const tools = await findGoTools(projectRoot(), KUBE_TOOLS);
  if (!tools)
    fail('the local lab has no kubectl yet: `vagrant up` of its k8s machine builds it (tools/kube)');
  const kubectl = path.join(tools, 'kubectl');
  let args: ParsedArgs | undefined;
  try {
    args = parseArgs(argv, EXEC_FLAGS);
  } catch {
    // Flags exec does not take: not an exec.
  }
  if (args?.positionals[0] !== 'exec') {
    const real = await execa(kubectl, argv, { stdio: 'inherit', reject: false });
    process.exit(real.exitCode ?? 1);
  }
  await exec(kubectl, args);
}

async function exec(kubectl: string, args: ParsedArgs): Promise<void> {
  const env = simEnv();
  const lab = labPoints(env.lab);
  const global = ['kubeconfig', 'context', 'request-timeout']
    .map((name) => [name, flagValue(args, name)] as const)
    .filter(([, value]) => value !== undefined)
    .map(([name, value]) => `--${name}=${value}`);
  const namespace = flagValue(args, 'namespace') ?? 'default';
  const get: KubeGet = async (getArgs) => {
    const result = await execa(kubectl, [...global, 'get', ...getArgs, '-o', 'json'], { reject: false });
    if (result.exitCode !== 0) fail(result.stderr.trim());
    return JSON.parse(result.stdout) as unknown;
  };
  const target = args.positionals[1];
  const command = args.rest ?? [];
  if (!target) fail('error: pod, type/name or --filename must be specified');
  if (command.length === 0) fail('error: you must specify at least one command for the container');
  const pod = await podFor(get, namespace, target);
  const containers = pod.spec.containers.map((c) => c.name);
  let container = flagValue(args, 'container');
  if (!container) {
    container = containers[0]!;
    if (containers.length > 1 && !flagOn(args, 'quiet')) {
      process.stderr.write(`Defaulted container "${container}" out of: ${containers.join(', ')}\n`);
    }
  }
  if (!containers.includes(container) || pod.status?.phase !== 'Running') {
    fail(`error: unable to upgrade connection: container not found ("${container}")`);
  }
  if (path.basename(command[0]!) !== 'curl') {
    process.stderr.write(
      `error: the local lab runs only curl inside containers, not "${command[0]}"\ncommand terminated with exit code 126\n`,
    );
    process.exit(126);
  }
  const parsed = parseCurl(command.slice(1));
  if ('exitCode' in parsed) terminate('', parsed.stderr, parsed.exitCode);
  const call = parsed.call;
  const istiod = runningIstiod(env.stateDir);

  // istiod's own debug port, inside its pod: the real istiod answers.
  const local = ['localhost', '127.0.0.1'].includes(call.url.hostname);
  if (pod.metadata.labels?.app === 'istiod' && local && call.url.port === '15014') {
    if (!istiod) terminate('', `curl: (7) Failed to connect to ${call.url.hostname} port 15014\n`, 7);
    const real = await execa(
      'curl',
      [...call.args, '--connect-to', `${call.url.hostname}:15014:127.0.0.1:${istiod.httpPort}`],
      { reject: false, stripFinalNewline: false },
    );
    terminate(real.stdout, real.stderr, real.exitCode ?? 1);
  }

  const sidecar = containers.includes('istio-proxy') && container !== 'istio-proxy';
  const host = call.url.hostname;
  const port = urlPort(call.url);
  // The pod's resolver first: cluster Services, else the public DNS the simulated internet answers.
  const request = await liveMeshRequest(get, {
    istiod: istiod ? `127.0.0.1:${istiod.grpcPort}` : '',
    outboundTrafficPolicy: istiod ? outboundPolicyOf(istiod.mesh) : 'ALLOW_ANY',
    client: { pod: pod.metadata.name, namespace: pod.metadata.namespace },
    gateway: { namespace: 'istio-system', labels: DEMO_GATEWAY_LABELS },
    probes: [{ host, port, ...(call.url.protocol === 'http:' ? { plain: true } : {}) }],
  });
  const remoteIp = request.vips[host] ?? publicAddress(host);
  if (!remoteIp) {
    const out = curlOutput(call, { exitCode: 6, httpCode: 0, error: `Could not resolve host: ${host}` });
    terminate(out.stdout, out.stderr, out.exitCode);
  }
  let verdict: MeshVerdict;
  if (sidecar && istiod) {
    verdict = (await runLiveOracle(await ensureOracle(projectRoot()), request)).verdicts[0]!;
  } else {
    verdict = {
      host,
      port,
      verdict: 'direct',
      upstream: `${remoteIp}:${port}`,
      path: [sidecar ? 'istio: not running, direct' : 'sidecar: none, direct'],
    };
  }
  const proxy = lab.proxy && machineRunning(env.stateDir, lab.proxy.name) ? lab.proxy : undefined;
  const outcome = outcomeOf({
    verdict,
    call,
    lab: { nodeIp: lab.kubernetes?.ip ?? '10.0.2.15', proxy, app: lab.app },
    remoteIp,
    now: new Date(),
    sourcePort: 32_768 + Math.floor(Math.random() * 28_231),
  });
  const objects = new Map<string, ReturnType<ObjectLookup>>();
  for (const kind of ['ConfigMap', 'Secret'] as const) {
    const list = (await get([
      '-n',
      pod.metadata.namespace,
      kind === 'ConfigMap' ? 'configmaps' : 'secrets',
    ])) as {
      items: {
        metadata: { name: string };
        data?: Record<string, string>;
        binaryData?: Record<string, string>;
      }[];
    };
    for (const item of list.items) objects.set(`${kind}/${item.metadata.name}`, item);
  }
  const out = await deliver(outcome, {
    simState: env.stateDir,
    lab,
    pod,
    container,
    call,
    sidecar,
    lookup: (kind, _namespace, name) => objects.get(`${kind}/${name}`),
  });
  terminate(out.stdout, out.stderr, out.exitCode);
}

/** The pod `kubectl exec TARGET` runs in: a pod by name, or a running pod of a Deployment. */
async function podFor(get: KubeGet, namespace: string, target: string): Promise<Pod> {
  const [type, name] = target.includes('/') ? (target.split('/', 2) as [string, string]) : ['pod', target];
  if (['pod', 'pods', 'po'].includes(type)) return (await get(['-n', namespace, 'pod', name])) as Pod;
  if (!['deploy', 'deployment', 'deployments'].includes(type)) {
    fail(`error: cannot attach to ${type}: selector for ${type} not implemented`);
  }
  const pod = await runningPodOf(get, namespace, name);
  if (!pod) fail('error: cannot exec into a container in a completed pod; current phase is Pending');
  return pod as Pod;
}

// Always a process of its own: the stand-in host serves the model cluster's tools, not the local lab's.
runAsProcess(main, 'error: ');
