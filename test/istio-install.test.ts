import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { canonicalSettings, istioInstallAction } from '../activities/istio-install.js';
import type { SimLab } from './support/sim-lab.js';
import { clusterLab, markRunning } from './support/sim-cluster.js';
import { MACHINES, type MachineTable } from '../sim/lib/machines.js';
import { updateState } from '../sim/lib/state.js';

let lab: SimLab;

beforeAll(async () => {
  lab = await clusterLab();
});
afterAll(async () => {
  await lab?.close();
});

const POC = {
  profile: 'demo',
  set: {
    'meshConfig.outboundTrafficPolicy.mode': 'REGISTRY_ONLY',
    'meshConfig.accessLogFile': '/dev/stdout',
  },
};

const deployments = async () =>
  (await lab.runtime.kubectl(['-n', 'istio-system', 'get', 'deployments', '-o', 'name'])).stdout.split('\n');

describe('istio.install', () => {
  it("installs the PoC's Istio, waits for its deployments and records the settings", async () => {
    const { output } = await lab.run(istioInstallAction, POC);
    expect(output).toEqual({
      skipped: false,
      settings: canonicalSettings('demo', POC.set),
      lines: [
        '✔ Istio core installed ⛵️',
        '✔ Istiod installed 🧠',
        '✔ Egress gateways installed 🛫',
        '✔ Ingress gateways installed 🛬',
        '✔ Installation complete',
      ],
      rollouts: [
        'deployment "istiod" successfully rolled out',
        'deployment "istio-egressgateway" successfully rolled out',
      ],
    });
    expect(await deployments()).toEqual([
      'deployment.apps/istiod',
      'deployment.apps/istio-egressgateway',
      'deployment.apps/istio-ingressgateway',
    ]);
    const marker = await lab.runtime.kubectl([
      '-n',
      'istio-system',
      'get',
      'configmap',
      'tunnel-lab-istio',
      '-o',
      'jsonpath={.data.settings}',
    ]);
    // Sorted keys: the same settings in another order are the same installation.
    expect(marker.stdout).toBe(
      '{"profile":"demo","set":{"meshConfig.accessLogFile":"/dev/stdout","meshConfig.outboundTrafficPolicy.mode":"REGISTRY_ONLY"}}',
    );
    const manifest = await readFile(
      path.join(lab.stateRoot, 'runs', 'test', 'manifests', 'istio', 'tunnel-lab-istio.yaml'),
      'utf8',
    );
    expect(manifest).toContain('kind: ConfigMap');
  });

  it('does nothing when the cluster already has the same settings', async () => {
    const reordered = { profile: 'demo', set: Object.fromEntries(Object.entries(POC.set).reverse()) };
    const { output } = await lab.run(istioInstallAction, reordered);
    expect(output).toEqual({ skipped: true, settings: canonicalSettings('demo', POC.set) });
  });

  it('installs again when the settings differ, and istioctl prunes what the new profile drops', async () => {
    const { output } = await lab.run(istioInstallAction, { profile: 'minimal', waitFor: ['istiod'] });
    expect(output).toMatchObject({
      skipped: false,
      lines: ['✔ Istio core installed ⛵️', '✔ Istiod installed 🧠', '✔ Installation complete'],
    });
    expect(await deployments()).toEqual(['deployment.apps/istiod']);
    // The egress gateway is gone, so waiting for it fails (retryably: it may be a slow install).
    const err = await lab
      .run(istioInstallAction, { profile: 'minimal', set: { 'values.global.logging.level': 'debug' } })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ type: 'LabToolError', nonRetryable: false });
    expect((err as Error).message).toMatch(/deployments\.apps "istio-egressgateway" not found/);
  });

  it('fails retryably while the cluster cannot be reached', async () => {
    await updateState<MachineTable, void>(lab.simState, MACHINES, {}, (table) => {
      table.k8s = { state: 'poweroff', provider: 'sim' };
    });
    try {
      const err = await lab.run(istioInstallAction, POC).catch((e: unknown) => e);
      expect(err).toMatchObject({ type: 'LabToolError', nonRetryable: false });
      expect((err as Error).message).toMatch(/The connection to the server 127\.0\.0\.1:6443 was refused/);
    } finally {
      await markRunning(lab, ['k8s']);
    }
  });

  it('rejects an invalid profile name before running anything', async () => {
    const err = await lab.run(istioInstallAction, { profile: 'Demo!' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ type: 'InputError', nonRetryable: true });
  });

  it('summarises the step with its settings', () => {
    expect(istioInstallAction.summary(istioInstallAction.input.parse(POC))).toBe(
      'istio.install profile=demo meshConfig.outboundTrafficPolicy.mode=REGISTRY_ONLY meshConfig.accessLogFile=/dev/stdout',
    );
  });
});

describe('istio.install and the pinned Istio release', () => {
  it('refuses an istioctl of another version than the lab pins, saying how to get the right one', async () => {
    const other = await clusterLab({
      edit: (def) => {
        (def as { istio?: unknown }).istio = { version: '1.29.0' };
      },
    });
    try {
      const err = await other.run(istioInstallAction, POC).then(
        () => new Error('expected a failure'),
        (e: unknown) => e as Error,
      );
      expect(err).toMatchObject({ type: 'LabConfigError', nonRetryable: true });
      expect(err.message).toMatch(
        /is istioctl 1\.28\.3, but .*sim\.yaml pins Istio 1\.29\.0: run scripts\/get-istioctl\.sh 1\.29\.0/,
      );
      expect(await deploymentsOf(other)).toEqual(['']);
    } finally {
      await other.close();
    }
  });
});

async function deploymentsOf(l: SimLab): Promise<string[]> {
  return (
    await l.runtime.kubectl(['-n', 'istio-system', 'get', 'deployments', '-o', 'name'], { check: false })
  ).stdout.split('\n');
}
