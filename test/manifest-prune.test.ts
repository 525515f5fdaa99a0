/**
 * Where manifest.prune looks for earlier runs' objects: everywhere on a Vagrant lab (the tool's own
 * cluster); on a cluster that is not the tool's, only where the lab's runs put theirs, so that the runs of
 * another lab file on the same cluster keep what they applied.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { stringify } from 'yaml';
import { istioInstallAction } from '../activities/istio-install.js';
import { manifestPruneAction, type ManifestPruneOutput } from '../activities/manifest-prune.js';
import { MANAGED_BY_LABEL, MANAGER, RUN_LABEL } from '../src/lab/ownership.js';
import { existingLabOn } from './support/existing-lab.js';
import { clusterLab } from './support/sim-cluster.js';
import type { SimLab } from './support/sim-lab.js';

let lab: SimLab;
const kubectl = async (...args: string[]) => lab.runtime.kubectl(args, { check: false });
const NAMESPACES = ['istio-system', 'lab-shared', 'lab-own', 'elsewhere'];

beforeAll(async () => {
  lab = await clusterLab({ configDelay: '0s' });
  await lab.run(istioInstallAction, { profile: 'demo' });
}, 60_000);
afterAll(() => lab?.close());

/** A ServiceEntry of an earlier run in each namespace. */
async function leftByAnEarlierRun(): Promise<void> {
  const docs = NAMESPACES.flatMap((namespace) => [
    ...(namespace === 'istio-system'
      ? []
      : [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } }]),
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'ServiceEntry',
      metadata: {
        name: 'left',
        namespace,
        labels: { [MANAGED_BY_LABEL]: MANAGER, [RUN_LABEL]: 'an-earlier-run' },
      },
      spec: {
        hosts: ['left.example.com'],
        ports: [{ number: 443, name: 'tls', protocol: 'TLS' }],
        resolution: 'DNS',
      },
    },
  ]);
  const file = path.join(lab.stateRoot, 'left.yaml');
  await writeFile(file, docs.map((d) => stringify(d)).join('---\n'));
  expect((await kubectl('apply', '-f', file)).exitCode).toBe(0);
}

const remaining = async () =>
  (
    await kubectl(
      'get',
      'serviceentries.networking.istio.io',
      '-A',
      '-o',
      'jsonpath={.items[*].metadata.namespace}',
    )
  ).stdout
    .split(' ')
    .filter(Boolean)
    .sort();

it("keeps to the lab's namespace, and istio-system with the shared gateway, on a cluster that is not the tool's", async () => {
  await leftByAnEarlierRun();
  const shared = await existingLabOn(lab, 'shared', { namespace: 'lab-shared' });
  const sharedPrune = await shared.run(manifestPruneAction, {});
  expect((sharedPrune.output as ManifestPruneOutput).deleted).toEqual([
    'serviceentry.networking.istio.io "left" deleted from istio-system namespace',
    'serviceentry.networking.istio.io "left" deleted from lab-shared namespace',
  ]);
  expect(await remaining()).toEqual(['elsewhere', 'lab-own']);
  const sharedDef = { kind: 'existing', namespace: 'lab-shared', egressGateway: 'shared' } as never;
  expect(
    manifestPruneAction.changes({ runs: 'earlier' } as never, { projectRoot: '', lab: sharedDef }),
  ).toEqual([expect.stringMatching(/by earlier runs, in istio-system and lab-shared$/)]);

  const own = await existingLabOn(lab, 'own', { namespace: 'lab-own', egressGateway: 'own' });
  await own.run(manifestPruneAction, {});
  expect(await remaining()).toEqual(['elsewhere']);
});

it("looks everywhere on a Vagrant lab, the tool's own cluster", async () => {
  await leftByAnEarlierRun();
  await lab.run(manifestPruneAction, {});
  expect(await remaining()).toEqual([]);
});
