/**
 * The oracle's config generator held to a running istiod. Every case of the mesh corpus is applied with
 * the real kubectl to the real API server (Istio's CRDs installed), a real istiod watches it, and
 * `istio-oracle xds` fetches the config istiod sends the client's sidecar and the egress gateway,
 * connecting as each of them, and walks the probes through it. Host by host, the verdicts must be the
 * ones the oracle gets offline from the same manifests, so the offline oracle (and the model held to it)
 * answers for the real control plane.
 */
import path from 'node:path';
import { stringify } from 'yaml';
import { projectRoot } from '../src/config.js';
import { ensureGoTools } from '../src/lab/go-tools.js';
import { ISTIOD_TOOLS } from '../src/lab/kube-tools.js';
import { liveMeshRequest } from '../src/mesh/live-mesh.js';
import { DEFAULT_CLIENT, DEMO_GATEWAY_LABELS, oracleRequest } from '../src/mesh/manifest-set.js';
import { ensureOracle, runLiveOracle, runOracle, type XdsResponse } from '../src/mesh/oracle.js';
import { verdictKey } from '../src/mesh/verdict.js';
import { runningIstiod, startIstiod, type MeshConfig } from '../sim/lib/istiod.js';
import { localCluster, type LocalCluster } from './support/local-cluster.js';
import { loadCorpus, type CorpusCase } from './support/mesh-corpus.js';

const root = projectRoot();
let cluster: LocalCluster;
let oracle: string;
let cases: CorpusCase[];

const kubectl = (args: string[], input?: string) => cluster.kubectl(args, input);

/** The demo profile's egress gateway (Deployment and Service) with these pod labels, and the client pod. */
function workloads(labels: Record<string, string>): string {
  const gateway = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'istio-egressgateway', namespace: 'istio-system', labels },
    spec: {
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: { containers: [{ name: 'istio-proxy', image: 'docker.io/istio/proxyv2:1.28.3' }] },
      },
    },
  };
  const service = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'istio-egressgateway', namespace: 'istio-system', labels },
    spec: {
      selector: labels,
      ports: [
        { name: 'http2', port: 80, targetPort: 8080 },
        { name: 'https', port: 443, targetPort: 8443 },
      ],
    },
  };
  const client = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: DEFAULT_CLIENT.pod,
      namespace: DEFAULT_CLIENT.namespace,
      labels: DEFAULT_CLIENT.labels,
    },
    spec: {
      containers: [
        { name: 'curl', image: 'curlimages/curl', command: ['sleep', '1d'] },
        { name: 'istio-proxy', image: 'docker.io/istio/proxyv2:1.28.3' },
      ],
    },
  };
  return [gateway, service, client].map((d) => stringify(d)).join('---\n');
}

let gatewayLabels: Record<string, string> | undefined;
let mesh: MeshConfig | undefined;

/** The gateway with these labels (recreated when they change: a Deployment's selector is fixed). */
async function ensureWorkloads(labels: Record<string, string>): Promise<void> {
  if (JSON.stringify(labels) === JSON.stringify(gatewayLabels)) return;
  await kubectl([
    '-n',
    'istio-system',
    'delete',
    'deployment,service',
    'istio-egressgateway',
    '--ignore-not-found',
    '--wait',
  ]);
  const apply = await kubectl(['apply', '-f', '-'], workloads(labels));
  expect(apply.stderr).toBe('');
  expect(
    (
      await kubectl([
        '-n',
        'istio-system',
        'rollout',
        'status',
        'deployment/istio-egressgateway',
        '--timeout=60s',
      ])
    ).exitCode,
  ).toBe(0);
  expect(
    (await kubectl(['wait', '--for=condition=Ready', `pod/${DEFAULT_CLIENT.pod}`, '--timeout=60s'])).exitCode,
  ).toBe(0);
  gatewayLabels = labels;
}

async function ensureIstiod(values: MeshConfig): Promise<void> {
  if (JSON.stringify(values) === JSON.stringify(mesh)) return;
  await startIstiod({ simState: cluster.simState, kubeconfig: cluster.kubeconfig, mesh: values });
  mesh = values;
}

/** Fetches until two answers in a row agree, at least a second after the change (istiod debounces pushes). */
async function settledAnswer(c: CorpusCase, since: number): Promise<XdsResponse> {
  const istiod = runningIstiod(cluster.simState)!;
  let last = '';
  for (let attempt = 0; ; attempt++) {
    const request = await liveMeshRequest(cluster.kubectlJson, {
      istiod: `127.0.0.1:${istiod.grpcPort}`,
      outboundTrafficPolicy: c.settings.outboundTrafficPolicy,
      client: DEFAULT_CLIENT,
      gateway: { namespace: 'istio-system', labels: c.settings.gatewayLabels ?? DEMO_GATEWAY_LABELS },
      probes: c.meshProbes,
    });
    const answer = await runLiveOracle(oracle, request);
    const key = JSON.stringify([answer.verdicts.map(verdictKey), answer.proxies]);
    if (key === last && Date.now() - since > 1000) return answer;
    if (attempt > 40) throw new Error(`istiod's config for ${c.name} did not settle`);
    last = key;
    await new Promise((r) => setTimeout(r, 250));
  }
}

beforeAll(async () => {
  const istiodTools = await ensureGoTools(root, ISTIOD_TOOLS);
  oracle = await ensureOracle(root);
  // The harness runs its client pod in default only: cases probed from another namespace are the offline
  // oracle's alone (mesh-differential.test.ts).
  cases = (await loadCorpus())
    .filter((c) => (c.settings.client ?? DEFAULT_CLIENT).namespace === DEFAULT_CLIENT.namespace)
    .sort((a, b) => a.settings.outboundTrafficPolicy.localeCompare(b.settings.outboundTrafficPolicy));
  cluster = await localCluster();
  expect(
    (await kubectl(['apply', '--server-side', '-f', path.join(istiodTools, 'crd-all.gen.yaml')])).exitCode,
  ).toBe(0);
  await kubectl(['wait', '--for=condition=Established', 'crd', '--all', '--timeout=60s']);
  await kubectl(['create', 'namespace', 'istio-system']);
}, 900_000);

afterAll(async () => {
  await cluster?.close();
}, 60_000);

test('a running istiod sends the config the oracle generates offline, corpus case by case', async () => {
  const differences: string[] = [];
  const kinds = new Set<string>();
  for (const c of cases) {
    await ensureIstiod({ outboundTrafficPolicy: { mode: c.settings.outboundTrafficPolicy } });
    await ensureWorkloads(c.settings.gatewayLabels ?? DEMO_GATEWAY_LABELS);
    const manifests = c.set.documents.map((d) => stringify(d)).join('---\n');
    const since = Date.now();
    if (manifests) await kubectl(['apply', '-f', '-'], manifests);
    const live = await settledAnswer(c, since);
    const offline = await runOracle(oracle, oracleRequest(c.set, c.settings, c.meshProbes));
    // Both answer one verdict per probe, in order.
    for (const [i, host] of c.probes.entries()) {
      const a = live.verdicts[i]!;
      const b = offline.verdicts[i]!;
      kinds.add(a.verdict);
      if (verdictKey(a) !== verdictKey(b)) {
        differences.push(
          `${c.name} ${host}: istiod ${verdictKey(a)} (${a.reason ?? ''}); oracle ${verdictKey(b)} (${b.reason ?? ''})`,
        );
      }
    }
    for (const proxy of ['sidecar', 'gateway'] as const) {
      const a = JSON.stringify(live.proxies[proxy].nacks ?? []);
      const b = JSON.stringify(offline.proxies[proxy].nacks ?? []);
      if (a !== b) differences.push(`${c.name} ${proxy} NACKs: istiod's config ${a}; oracle ${b}`);
    }
    if (manifests) await kubectl(['delete', '-f', '-', '--ignore-not-found', '--wait'], manifests);
  }
  expect(differences).toEqual([]);
  // The corpus reaches every outcome, so agreeing is not agreeing on one answer.
  expect([...kinds].sort()).toEqual(['blocked', 'direct', 'fail', 'tunnel']);
}, 900_000);
