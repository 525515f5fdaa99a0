/**
 * The local lab's machines over a halt and an up, as a kept lab lives between runs: the k8s machine's
 * control plane stops and starts with it, keeps its cluster, and istiod comes back with the mesh config
 * it was installed with (as its pod would), so the next run's probes are still judged by a live istiod.
 */
import { istioInstallAction } from '../activities/istio-install.js';
import { kubeconfigFetchAction } from '../activities/kubeconfig-fetch.js';
import { runningControlPlane } from '../sim/lib/control-plane.js';
import { runningIstiod } from '../sim/lib/istiod.js';
import { simLab, type SimLab } from './support/sim-lab.js';

let lab: SimLab;

beforeAll(async () => {
  lab = await simLab(undefined, 'local');
}, 60_000);
afterAll(async () => {
  await lab?.close();
}, 60_000);

test('halt stops the control plane and istiod; up starts both again, with the cluster and the mesh config kept', async () => {
  const up = await lab.vagrant(['up', 'k8s']);
  expect(up.exitCode).toBe(0);
  expect(up.stdout).toMatch(/k8s: Kubernetes v1\.36\.1 control plane on https:\/\/127\.0\.0\.1:\d+/);
  expect((await lab.run(kubeconfigFetchAction, {})).output).toMatchObject({ nodesReady: true });
  const set = { 'meshConfig.outboundTrafficPolicy.mode': 'REGISTRY_ONLY' };
  expect((await lab.run(istioInstallAction, { set })).output).toMatchObject({ skipped: false });
  expect(runningIstiod(lab.simState)?.mesh).toEqual({ outboundTrafficPolicy: { mode: 'REGISTRY_ONLY' } });

  expect((await lab.vagrant(['halt', 'k8s'])).exitCode).toBe(0);
  expect(runningControlPlane(lab.simState)).toBeUndefined();
  expect(runningIstiod(lab.simState)).toBeUndefined();
  expect((await lab.vagrant(['status', 'k8s', '--machine-readable'])).stdout).toContain(',state,poweroff');

  const again = await lab.vagrant(['up', 'k8s']);
  expect(again.stdout).toMatch(/k8s: istiod started again/);
  expect(runningIstiod(lab.simState)?.mesh).toEqual({ outboundTrafficPolicy: { mode: 'REGISTRY_ONLY' } });
  expect((await lab.vagrant(['status', 'k8s', '--machine-readable'])).stdout).toContain(',state,running');
  // The installation is still recorded in the cluster, so a rerun of istio.install does nothing.
  await lab.run(kubeconfigFetchAction, {});
  expect((await lab.run(istioInstallAction, { set })).output).toMatchObject({ skipped: true });
}, 300_000);
