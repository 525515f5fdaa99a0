import { rm } from 'node:fs/promises';
import path from 'node:path';
import { kubeLabelAction } from '../activities/kube-label.js';
import type { SimLab } from './support/sim-lab.js';
import { clusterLab, writeKubeconfig } from './support/sim-cluster.js';

let lab: SimLab;

beforeAll(async () => {
  lab = await clusterLab();
});
afterAll(async () => {
  await lab?.close();
});

const labels = async () =>
  (await lab.runtime.kubectl(['get', 'namespace', 'default', '-o', 'jsonpath={.metadata.labels}'])).stdout;

describe('kube.label', () => {
  it('labels a namespace, and says so only when something changed', async () => {
    const first = await lab.run(kubeLabelAction, {
      name: 'default',
      labels: { 'istio-injection': 'enabled' },
    });
    expect(first.output).toEqual({
      object: 'namespace/default',
      changed: true,
      output: 'namespace/default labeled',
    });
    expect(JSON.parse(await labels())).toEqual({
      'istio-injection': 'enabled',
      'kubernetes.io/metadata.name': 'default',
    });

    const again = await lab.run(kubeLabelAction, {
      kind: 'namespace',
      name: 'default',
      labels: { 'istio-injection': 'enabled' },
    });
    expect(again.output).toMatchObject({ changed: false, output: 'namespace/default not labeled' });

    const overwritten = await lab.run(kubeLabelAction, {
      name: 'default',
      labels: { 'istio-injection': 'disabled' },
    });
    expect(overwritten.output).toMatchObject({ changed: true });
    expect(JSON.parse(await labels())).toMatchObject({ 'istio-injection': 'disabled' });

    const removed = await lab.run(kubeLabelAction, { name: 'default', labels: { 'istio-injection': null } });
    expect(removed.output).toMatchObject({ changed: true });
    expect(JSON.parse(await labels())).toEqual({ 'kubernetes.io/metadata.name': 'default' });
  });

  it('fails retryably for a namespace that does not exist (yet)', async () => {
    const err = await lab
      .run(kubeLabelAction, { name: 'nowhere', labels: { a: 'b' } })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ type: 'LabToolError', nonRetryable: false });
    expect((err as Error).message).toMatch(/Error from server \(NotFound\): namespaces "nowhere" not found/);
  });

  it('rejects label keys and values kubectl would refuse, before running anything', async () => {
    for (const bad of [{ 'bad key': 'x' }, { ok: 'no spaces' }, { ok: 'x'.repeat(64) }, {}]) {
      const err = await lab.run(kubeLabelAction, { name: 'default', labels: bad }).catch((e: unknown) => e);
      expect(err).toMatchObject({ type: 'InputError', nonRetryable: true });
    }
  });

  it('needs the kubeconfig: without it kubectl fails as the real one does', async () => {
    const file = path.join(lab.labState, 'kubeconfig');
    await rm(file);
    try {
      const err = await lab
        .run(kubeLabelAction, { name: 'default', labels: { a: 'b' } })
        .catch((e: unknown) => e);
      expect(err).toMatchObject({ type: 'LabToolError' });
      expect((err as Error).message).toContain(`error: stat ${file}: no such file or directory`);
    } finally {
      await writeKubeconfig(lab);
    }
  });

  it('summarises the step with its target', () => {
    expect(
      kubeLabelAction.summary(kubeLabelAction.input.parse({ name: 'default', labels: { a: 'b', c: null } })),
    ).toBe('kube.label namespace default a=b c-');
  });
});
