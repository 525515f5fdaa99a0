/**
 * A lab of kind existing whose cluster is the local lab's real Kubernetes API server and istiod (the real
 * kubectl, Istio's CRDs served by the API server): the steps that are only kubectl calls on such a lab
 * check the installed Istio, make the run's namespace with its Sidecar resource, and remove exactly the
 * run's objects, as they would on any conformant cluster.
 */
import { istioInstallAction, type IstioInstallOutput } from '../activities/istio-install.js';
import { kubeNamespaceAction, POLICY_SIDECAR } from '../activities/kube-namespace.js';
import { kubeconfigFetchAction } from '../activities/kubeconfig-fetch.js';
import { manifestPruneAction, type ManifestPruneOutput } from '../activities/manifest-prune.js';
import { MANAGED_BY_LABEL, MANAGER, RUN_LABEL } from '../src/lab/ownership.js';
import { existingLabOn, failure } from './support/existing-lab.js';
import { eventually } from './support/temporal.js';
import { simLab, type SimLab } from './support/sim-lab.js';

let lab: SimLab;
const kubectl = async (...args: string[]) => lab.runtime.kubectl(args, { check: false });

beforeAll(async () => {
  lab = await simLab(undefined, 'local');
  expect((await lab.vagrant(['up', 'k8s'])).exitCode).toBe(0);
  await lab.run(kubeconfigFetchAction, {});
  // The cluster as its owner installed it: Istio's default, letting any host out.
  await lab.run(istioInstallAction, { profile: 'demo', set: { 'meshConfig.accessLogFile': '/dev/stdout' } });
}, 300_000);
afterAll(async () => {
  await lab?.close();
}, 60_000);

test("on a real API server: the installed Istio checked, the run's namespace made and scoped, then exactly the run's objects removed", async () => {
  const mine = await existingLabOn(lab, 'mine', { namespace: 'tunnel-lab-a', egressGateway: 'own' });
  const checked = await mine.run(istioInstallAction, {
    profile: 'demo',
    set: { 'meshConfig.accessLogFile': '/dev/stdout' },
  });
  const found = (checked.output as IstioInstallOutput).found!;
  expect(found.istiod.map((d) => d.name)).toEqual(['istiod']);
  expect(found.settings).toEqual([
    { key: 'meshConfig.accessLogFile', wants: '/dev/stdout', has: '/dev/stdout', matches: true },
  ]);
  // The cluster's mesh lets any host out: a scenario that needs it mesh-wide is refused, naming both.
  const meshWide = await failure(
    mine.run(istioInstallAction, {
      profile: 'demo',
      set: { 'meshConfig.outboundTrafficPolicy.mode': 'REGISTRY_ONLY' },
    }),
  );
  expect(meshWide?.message).toMatch(/mesh config \(istio\) has outboundTrafficPolicy\.mode ALLOW_ANY/);

  const made = await mine.run(kubeNamespaceAction, {
    injection: true,
    outboundTrafficPolicy: 'REGISTRY_ONLY',
  });
  expect(made.output).toEqual({
    namespace: 'tunnel-lab-a',
    created: true,
    owned: true,
    sidecar: `tunnel-lab-a/${POLICY_SIDECAR}`,
  });
  const sidecar = JSON.parse(
    (await kubectl('-n', 'tunnel-lab-a', 'get', 'sidecars.networking.istio.io', POLICY_SIDECAR, '-o', 'json'))
      .stdout,
  ) as { metadata: { labels: Record<string, string> }; spec: unknown };
  expect(sidecar.spec).toEqual({ outboundTrafficPolicy: { mode: 'REGISTRY_ONLY' } });
  expect(sidecar.metadata.labels[RUN_LABEL]).toBe('mine');
  // Idempotent: the step again takes the namespace it made over.
  expect((await mine.run(kubeNamespaceAction, { injection: true })).output).toMatchObject({
    created: false,
    owned: true,
  });

  // Another run's object in the namespace default stays: the run removes its own only.
  expect((await kubectl('-n', 'default', 'create', 'configmap', 'theirs')).exitCode).toBe(0);
  const theirs = [`${MANAGED_BY_LABEL}=${MANAGER}`, `${RUN_LABEL}=another-run`];
  expect((await kubectl('-n', 'default', 'label', 'configmap', 'theirs', ...theirs)).exitCode).toBe(0);
  const removed = await mine.run(manifestPruneAction, { runs: 'this' });
  expect((removed.output as ManifestPruneOutput).deleted).toEqual([
    `sidecar.networking.istio.io "${POLICY_SIDECAR}" deleted from tunnel-lab-a namespace`,
    'namespace "tunnel-lab-a" deleted',
  ]);
  await eventually(async () =>
    /NotFound/.test((await kubectl('get', 'namespace', 'tunnel-lab-a')).stderr) ? true : undefined,
  );
  expect((await kubectl('-n', 'default', 'get', 'configmap', 'theirs')).exitCode).toBe(0);
}, 180_000);
