/**
 * Istio installed on the real control plane the way the local lab's istioctl installs it: the demo
 * profile's objects applied with the real kubectl, the real istiod started with the mesh config, and
 * the API server injecting sidecars through a MutatingAdmissionPolicy. Then the proof of concept's
 * tunnel config, applied with kubectl, is judged from the config istiod sends the injected client pod's
 * sidecar and the egress gateway pod, fetched over xDS.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { projectRoot } from '../src/config.js';
import { loadLab } from '../src/lab/definition.js';
import { liveMeshRequest } from '../src/mesh/live-mesh.js';
import { DEMO_GATEWAY_LABELS, renderManifestSet } from '../src/mesh/manifest-set.js';
import { ensureOracle, runLiveOracle, type XdsResponse } from '../src/mesh/oracle.js';
import { verdictKey } from '../src/mesh/verdict.js';
import { runningIstiod } from '../sim/lib/istiod.js';
import { installLocalIstio, meshConfigOf } from '../sim/lib/local-istio.js';
import { localCluster, type LocalCluster } from './support/local-cluster.js';

const root = projectRoot();
let cluster: LocalCluster;
let simState: string;
let oracle: string;
const installed: string[] = [];

const kubectl = (args: string[], input?: string) => cluster.kubectl(args, input);

beforeAll(async () => {
  oracle = await ensureOracle(root);
  cluster = await localCluster();
  simState = cluster.simState;
  await installLocalIstio({
    simState,
    kubectl: cluster.kubectlBin,
    kubeconfig: cluster.kubeconfig,
    profile: 'demo',
    set: {
      'meshConfig.accessLogFile': '/dev/stdout',
      'meshConfig.outboundTrafficPolicy.mode': 'REGISTRY_ONLY',
    },
    log: (line) => installed.push(line),
  });
}, 900_000);

afterAll(async () => {
  await cluster?.close();
}, 60_000);

test('--set meshConfig.* values become the mesh config; other values are refused', () => {
  expect(
    meshConfigOf({
      'meshConfig.accessLogFile': '/dev/stdout',
      'meshConfig.outboundTrafficPolicy.mode': 'REGISTRY_ONLY',
    }),
  ).toEqual({ accessLogFile: '/dev/stdout', outboundTrafficPolicy: { mode: 'REGISTRY_ONLY' } });
  expect(() => meshConfigOf({ 'values.global.proxy.privileged': 'true' })).toThrow(
    "the local lab's istioctl sets only meshConfig.* values, not values.global.proxy.privileged",
  );
});

test('installs the demo profile: the mesh ConfigMap, istiod and both gateways roll out, istiod runs', async () => {
  expect(installed).toEqual([
    '✔ Istio core installed ⛵️',
    '✔ Istiod installed 🧠',
    '✔ Egress gateways installed 🛫',
    '✔ Ingress gateways installed 🛫',
    '✔ Installation complete',
  ]);
  for (const name of ['istiod', 'istio-egressgateway', 'istio-ingressgateway']) {
    const rollout = await kubectl([
      '-n',
      'istio-system',
      'rollout',
      'status',
      `deployment/${name}`,
      '--timeout=60s',
    ]);
    expect(rollout.stdout).toContain('successfully rolled out');
  }
  const mesh = await kubectl([
    '-n',
    'istio-system',
    'get',
    'configmap',
    'istio',
    '-o',
    'jsonpath={.data.mesh}',
  ]);
  expect(parse(mesh.stdout)).toEqual({
    accessLogFile: '/dev/stdout',
    outboundTrafficPolicy: { mode: 'REGISTRY_ONLY' },
  });
  const istiod = runningIstiod(simState)!;
  expect(istiod).toMatchObject({ httpPort: expect.any(Number), grpcPort: expect.any(Number) });
  const ready = await fetch(`http://127.0.0.1:${istiod.httpPort}/ready`);
  expect(ready.status).toBe(200);
  expect(await readFile(path.join(istiod.dir, 'mesh.yaml'), 'utf8')).toBe(stringify(parse(mesh.stdout)));
}, 120_000);

test('pods in a namespace labelled istio-injection=enabled get a sidecar; opted-out pods and other namespaces do not', async () => {
  expect(
    (await kubectl(['label', 'namespace', 'default', 'istio-injection=enabled', '--overwrite'])).exitCode,
  ).toBe(0);
  await kubectl(['create', 'deployment', 'curl', '--image=curlimages/curl', '--', 'sleep', '1d']);
  expect((await kubectl(['rollout', 'status', 'deployment/curl', '--timeout=60s'])).exitCode).toBe(0);
  const pod = await kubectl([
    ...['get', 'pods', '-l', 'app=curl', '-o'],
    'jsonpath={.items[0].spec.containers[*].name}/{.items[0].spec.initContainers[*].name}/{.items[0].metadata.labels.security\\.istio\\.io/tlsMode}',
  ]);
  expect(pod.stdout).toBe('curl istio-proxy/istio-init/istio');
  await kubectl(['run', 'plain', '--image=curlimages/curl', '--labels=sidecar.istio.io/inject=false']);
  expect((await kubectl(['get', 'pod', 'plain', '-o', 'jsonpath={.spec.containers[*].name}'])).stdout).toBe(
    'plain',
  );
  await kubectl(['create', 'namespace', 'other']);
  await kubectl(['-n', 'other', 'run', 'outside', '--image=curlimages/curl']);
  expect(
    (await kubectl(['-n', 'other', 'get', 'pod', 'outside', '-o', 'jsonpath={.spec.containers[*].name}']))
      .stdout,
  ).toBe('outside');
}, 120_000);

test("istiod's config for the injected pod: blocked before the tunnel config, tunnelled after", async () => {
  const istiod = runningIstiod(simState)!;
  const pod = (await kubectl(['get', 'pods', '-l', 'app=curl', '-o', 'jsonpath={.items[0].metadata.name}']))
    .stdout;
  const ask = async (): Promise<XdsResponse> =>
    runLiveOracle(
      oracle,
      await liveMeshRequest(cluster.kubectlJson, {
        istiod: `127.0.0.1:${istiod.grpcPort}`,
        outboundTrafficPolicy: 'REGISTRY_ONLY',
        client: { pod, namespace: 'default' },
        gateway: { namespace: 'istio-system', labels: DEMO_GATEWAY_LABELS },
        probes: [{ host: 'www.google.com' }, { host: 'www.example.com' }],
      }),
    );
  const keys = (r: XdsResponse) => r.verdicts.map((v) => `${v.host} ${verdictKey(v)}`);
  expect(keys(await ask())).toEqual([
    'www.google.com blocked from sidecar',
    'www.example.com blocked from sidecar',
  ]);

  const lab = await loadLab('vagrant', { projectRoot: root, stateDir: cluster.dir });
  const set = await renderManifestSet(
    ['service-entries.yaml', 'egress-routing.yaml', 'tcp-tunnel-filter.yaml'].map((f) => ({
      file: `tls-passthrough/${f}`,
    })),
    { projectRoot: root, lab },
  );
  const applied = await kubectl(['apply', '-f', '-'], set.documents.map((d) => stringify(d)).join('---\n'));
  expect(applied.stderr).toBe('');
  const deadline = Date.now() + 20_000;
  let answer = await ask();
  while (keys(answer)[0] === 'www.google.com blocked from sidecar' && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 250));
    answer = await ask();
  }
  expect(keys(answer)).toEqual([
    'www.google.com tunnel via 192.168.56.10:3128 CONNECT www.google.com:443 HTTP/1.1 tls',
    'www.example.com blocked from sidecar',
  ]);
  expect(answer.proxies.sidecar.id).toBe(`${pod}.default`);
}, 120_000);
