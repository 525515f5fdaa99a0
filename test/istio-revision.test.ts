/**
 * A cluster whose Istio is a revision (`istioctl install --revision canary`), as a lab of kind existing:
 * istio.install checks that revision's istiod and mesh config, kube.namespace asks for its sidecars with
 * `istio.io/rev`, and the lab file's mistakes are named. The cluster is the simulated lab's, installed
 * with the default profile: it has no egress gateway of Istio's.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { stringify } from 'yaml';
import { istioInstallAction, type IstioInstallOutput } from '../activities/istio-install.js';
import { kubeNamespaceAction } from '../activities/kube-namespace.js';
import { existingLabOn, failure } from './support/existing-lab.js';
import { clusterLab } from './support/sim-cluster.js';
import type { SimLab } from './support/sim-lab.js';

let lab: SimLab;
const kubectl = async (...args: string[]) => lab.runtime.kubectl(args, { check: false });

beforeAll(async () => {
  lab = await clusterLab({ configDelay: '0s' });
  const installed = await lab.runtime.istioctl([
    'install',
    '-y',
    '--set',
    'profile=default',
    '--revision',
    'canary',
    '--set',
    'meshConfig.accessLogFile=/dev/stdout',
  ]);
  expect(installed.exitCode).toBe(0);
}, 60_000);
afterAll(() => lab?.close());

const check = { profile: 'demo', set: { 'meshConfig.accessLogFile': '/dev/stdout' } };

describe('istio.install on a cluster whose Istio is a revision', () => {
  it("checks the revision's istiod and its own mesh config, and waits for no gateway the runs bring themselves", async () => {
    const canary = await existingLabOn(lab, 'canary', {
      istio: { revision: 'canary', version: '1.28.3' },
      egressGateway: 'own',
    });
    const checked = await canary.run(istioInstallAction, check);
    expect((checked.output as IstioInstallOutput).found?.istiod).toEqual([
      { name: 'istiod-canary', version: '1.28.3', revision: 'canary' },
    ]);
    expect(checked.evidence).toEqual([
      'istiod-canary: Istio 1.28.3, revision canary',
      'meshConfig.accessLogFile: /dev/stdout',
    ]);
    expect((checked.output as IstioInstallOutput).rollouts).toEqual([
      expect.stringContaining('"istiod-canary" successfully rolled out'),
    ]);

    // With the shared gateway the scenarios need Istio's: this cluster has none, and the check says so.
    const shared = await existingLabOn(lab, 'canary-shared', { istio: { revision: 'canary' } });
    const noGateway = await failure(shared.run(istioInstallAction, check));
    expect(noGateway?.message).toMatch(/deployments?.* "istio-egressgateway" not found/);
  });

  it('names the revisions the cluster has when the lab file names none of them', async () => {
    const unnamed = await existingLabOn(lab, 'unnamed', { egressGateway: 'own' });
    const none = await failure(unnamed.run(istioInstallAction, check));
    expect(none).toMatchObject({ type: 'LabConfigError' });
    expect(none?.message).toMatch(
      /^the cluster's istiod are revisions canary, and none is the default: set istio\.revision in \S+unnamed\.yaml/,
    );

    const stable = await existingLabOn(lab, 'stable', {
      istio: { revision: 'stable' },
      egressGateway: 'own',
    });
    const other = await failure(stable.run(istioInstallAction, check));
    expect(other?.message).toMatch(
      /^no istiod of revision stable in istio-system: the cluster's are canary \(\S+stable\.yaml names istio\.revision stable\)/,
    );

    const older = await existingLabOn(lab, 'older', {
      istio: { revision: 'canary', version: '1.27.1' },
      egressGateway: 'own',
    });
    expect((await failure(older.run(istioInstallAction, check)))?.message).toMatch(
      /^the cluster runs Istio 1\.28\.3 as revision canary, but \S+older\.yaml pins 1\.27\.1/,
    );
  });
});

describe('kube.namespace on a cluster whose Istio is a revision', () => {
  /** Applies a one-container Deployment in `namespace`; the containers its pod got. */
  const podContainers = async (namespace: string): Promise<string> => {
    const file = path.join(lab.stateRoot, `app.${namespace}.yaml`);
    await writeFile(
      file,
      stringify({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'app', namespace },
        spec: {
          selector: { matchLabels: { app: 'app' } },
          template: {
            metadata: { labels: { app: 'app' } },
            spec: { containers: [{ name: 'app', image: 'curlimages/curl:8.17.0' }] },
          },
        },
      }),
    );
    expect((await kubectl('apply', '-f', file)).exitCode).toBe(0);
    return (
      await kubectl(
        '-n',
        namespace,
        'get',
        'pods',
        '-l',
        'app=app',
        '-o',
        'jsonpath={.items[0].spec.containers[*].name}',
      )
    ).stdout;
  };

  it("asks for the revision's sidecars with istio.io/rev, and they are injected", async () => {
    const canary = await existingLabOn(lab, 'canary-ns', {
      istio: { revision: 'canary' },
      namespace: 'canary-app',
    });
    const made = await canary.run(kubeNamespaceAction, { injection: true });
    expect(made.output).toMatchObject({ namespace: 'canary-app', created: true });
    const labels = JSON.parse(
      (await kubectl('get', 'namespace', 'canary-app', '-o', 'jsonpath={.metadata.labels}')).stdout,
    ) as Record<string, string>;
    expect(labels['istio.io/rev']).toBe('canary');
    expect(labels['istio-injection']).toBeUndefined();
    expect(await podContainers('canary-app')).toBe('app istio-proxy');

    // The label of a revision the cluster does not run gets no sidecar: what the check above relies on.
    const stable = await existingLabOn(lab, 'stable-ns', {
      istio: { revision: 'stable' },
      namespace: 'stable-app',
    });
    await stable.run(kubeNamespaceAction, { injection: true });
    expect(await podContainers('stable-app')).toBe('app');
  });

  it('refuses istio-injection on such a lab, which would ask the default revision, in the step or on the namespace', async () => {
    const canary = await existingLabOn(lab, 'canary-refusals', {
      istio: { revision: 'canary' },
      namespace: 'theirs',
    });
    const asked = await failure(
      canary.run(kubeNamespaceAction, { labels: { 'istio-injection': 'enabled' } }),
    );
    expect(asked).toMatchObject({ type: 'LabConfigError' });
    expect(asked?.message).toMatch(
      /uses Istio revision canary, whose sidecars a namespace asks for with istio\.io\/rev=canary: say injection: true/,
    );

    expect((await kubectl('create', 'namespace', 'theirs')).exitCode).toBe(0);
    expect((await kubectl('label', 'namespace', 'theirs', 'istio-injection=enabled')).exitCode).toBe(0);
    const labelled = await failure(canary.run(kubeNamespaceAction, { injection: true }));
    expect(labelled?.message).toMatch(
      /^namespace theirs is labelled istio-injection=enabled, which Istio obeys before istio\.io\/rev/,
    );
  });
});
