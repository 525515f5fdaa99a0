import { writeFile } from 'node:fs/promises';
import { istioInstallAction } from '../activities/istio-install.js';
import { kubeNamespaceAction, POLICY_SIDECAR } from '../activities/kube-namespace.js';
import { RUN_LABEL } from '../src/lab/ownership.js';
import type { SimLab } from './support/sim-lab.js';
import { clusterLab } from './support/sim-cluster.js';

let lab: SimLab;

beforeAll(async () => {
  lab = await clusterLab({ configDelay: '0s' });
  // Istio's CRDs: the Sidecar resource is one.
  await lab.run(istioInstallAction, { profile: 'demo' });
});
afterAll(async () => {
  await lab?.close();
});

const kubectl = async (...args: string[]) => (await lab.runtime.kubectl(args, { check: false })).stdout;
const labelsOf = async (namespace: string) =>
  JSON.parse(await kubectl('get', 'namespace', namespace, '-o', 'jsonpath={.metadata.labels}')) as Record<
    string,
    string
  >;
const sidecarOf = async (namespace: string) =>
  JSON.parse(
    await kubectl('get', 'sidecars.networking.istio.io', POLICY_SIDECAR, '-n', namespace, '-o', 'json'),
  ) as {
    metadata: { labels: Record<string, string> };
    spec: unknown;
  };

describe('kube.namespace', () => {
  it("labels the lab's namespace that was there before, and scopes the outbound policy to it", async () => {
    const input = { labels: { 'istio-injection': 'enabled' }, outboundTrafficPolicy: 'REGISTRY_ONLY' };
    const first = await lab.run(kubeNamespaceAction, input);
    expect(first.output).toEqual({
      namespace: 'default',
      created: false,
      owned: false,
      sidecar: `default/${POLICY_SIDECAR}`,
    });
    expect(first.evidence).toEqual([
      'namespace default was there before: labelled only, never deleted',
      `Sidecar default/${POLICY_SIDECAR}: outbound traffic REGISTRY_ONLY`,
    ]);
    // Not the run's: a run that leaves nothing behind must not find it by its label.
    const labels = await labelsOf('default');
    expect(labels).toMatchObject({ 'istio-injection': 'enabled' });
    expect(labels[RUN_LABEL]).toBeUndefined();
    const sidecar = await sidecarOf('default');
    expect(sidecar.spec).toEqual({ outboundTrafficPolicy: { mode: 'REGISTRY_ONLY' } });
    expect(sidecar.metadata.labels[RUN_LABEL]).toBe('test');

    const again = await lab.run(kubeNamespaceAction, input);
    expect(again.output).toEqual(first.output);
  });

  it("creates a namespace of the run's own, labelled as the run's, and takes over one an earlier run left", async () => {
    const created = await lab.run(kubeNamespaceAction, {
      name: 'tunnel-lab-a',
      labels: { 'istio-injection': 'enabled' },
    });
    expect(created.output).toEqual({ namespace: 'tunnel-lab-a', created: true, owned: true });
    expect(created.evidence).toEqual(['namespace tunnel-lab-a created for this run']);
    expect(await labelsOf('tunnel-lab-a')).toMatchObject({
      'istio-injection': 'enabled',
      [RUN_LABEL]: 'test',
    });

    await kubectl('label', 'namespace', 'tunnel-lab-a', `${RUN_LABEL}=an-earlier-run`, '--overwrite');
    const again = await lab.run(kubeNamespaceAction, { name: 'tunnel-lab-a' });
    expect(again.output).toEqual({ namespace: 'tunnel-lab-a', created: false, owned: true });
    expect(again.evidence).toEqual([
      'namespace tunnel-lab-a (left by an earlier run) taken over by this run',
    ]);
    expect((await labelsOf('tunnel-lab-a'))[RUN_LABEL]).toBe('test');
  });

  it("refuses to set the policy beside a Sidecar resource of the namespace's owner", async () => {
    await kubectl('create', 'namespace', 'theirs');
    const file = `${lab.labState}/their-sidecar.yaml`;
    await writeFile(
      file,
      'apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: { name: default, namespace: theirs }\n' +
        'spec: { outboundTrafficPolicy: { mode: ALLOW_ANY } }\n',
    );
    await lab.runtime.kubectl(['apply', '-f', file]);
    const err = await lab
      .run(kubeNamespaceAction, { name: 'theirs', outboundTrafficPolicy: 'REGISTRY_ONLY' })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ type: 'LabConfigError', nonRetryable: true });
    expect((err as Error).message).toContain(
      'namespace theirs already has a Sidecar resource for all its workloads (default)',
    );
    expect(await kubectl('get', 'sidecars.networking.istio.io', '-n', 'theirs', '-o', 'name')).not.toContain(
      POLICY_SIDECAR,
    );
  });

  it('names what it will change before it runs', () => {
    const changes = kubeNamespaceAction.changes(
      kubeNamespaceAction.input.parse({
        labels: { 'istio-injection': 'enabled' },
        outboundTrafficPolicy: 'REGISTRY_ONLY',
      }),
      { projectRoot: '/', lab: { ...lab.runtime.def, namespace: 'tunnel-lab-b' } },
    );
    expect(changes).toEqual([
      "create Namespace tunnel-lab-b if absent (then removed with the run's objects), else label it: istio-injection=enabled",
      `apply Sidecar tunnel-lab-b/${POLICY_SIDECAR} (outbound traffic REGISTRY_ONLY in tunnel-lab-b only)`,
    ]);
  });

  it('the API server never deletes the namespace default (as NamespaceLifecycle refuses)', async () => {
    const result = await lab.runtime.kubectl(['delete', 'namespace', 'default'], { check: false });
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain('namespaces "default" is forbidden: this namespace may not be deleted');
  });
});
