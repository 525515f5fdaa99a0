import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { istioInstallAction } from '../activities/istio-install.js';
import { manifestApplyAction } from '../activities/manifest-apply.js';
import type { SimLab } from './support/sim-lab.js';
import { clusterLab } from './support/sim-cluster.js';

let lab: SimLab;

beforeAll(async () => {
  lab = await clusterLab();
});
afterAll(async () => {
  await lab?.close();
});

const runDir = () => path.join(lab.stateRoot, 'runs', 'test');

describe('manifest.apply', () => {
  it('renders a template into the run folder, applies it and waits for the rollout', async () => {
    const { output } = await lab.run(manifestApplyAction, {
      files: ['common/curl.yaml'],
      waitFor: [{ name: 'curl' }],
    });
    const rendered = path.join(runDir(), 'manifests', 'common', 'curl.yaml');
    expect(output).toEqual({
      action: 'apply',
      rendered: [{ file: 'common/curl.yaml', path: rendered, objects: 3 }],
      lines: ['serviceaccount/curl created', 'service/curl created', 'deployment.apps/curl created'],
      rollouts: ['deployment "curl" successfully rolled out'],
    });
    const docs = parseAllDocuments(await readFile(rendered, 'utf8')).map(
      (d) => d.toJS() as { kind: string; metadata: { namespace: string } },
    );
    expect(docs.map((d) => [d.kind, d.metadata.namespace])).toEqual([
      ['ServiceAccount', 'default'],
      ['Service', 'default'],
      ['Deployment', 'default'],
    ]);
  });

  it('is idempotent: the same manifests again are unchanged, changed values are configured', async () => {
    const again = await lab.run(manifestApplyAction, { files: ['common/curl.yaml'] });
    expect((again.output as { lines: string[] }).lines).toEqual([
      'serviceaccount/curl unchanged',
      'service/curl unchanged',
      'deployment.apps/curl unchanged',
    ]);
    const changed = await lab.run(manifestApplyAction, {
      files: ['common/curl.yaml'],
      values: { curlImage: 'curlimages/curl:8.12.1' },
    });
    expect((changed.output as { lines: string[] }).lines).toContain('deployment.apps/curl configured');
  });

  it('fails retryably on Istio kinds before Istio is installed, then applies them once it is', async () => {
    const files = ['tls-passthrough/service-entries.yaml'];
    const err = await lab.run(manifestApplyAction, { files }).catch((e: unknown) => e);
    expect(err).toMatchObject({ type: 'LabToolError', nonRetryable: false });
    expect((err as Error).message).toMatch(
      /no matches for kind "ServiceEntry" in version "networking\.istio\.io\/v1"/,
    );

    await lab.run(istioInstallAction, { profile: 'demo' });
    const { output } = await lab.run(manifestApplyAction, {
      files,
      values: { hosts: ['www.google.com', 'example.org'] },
    });
    expect((output as { lines: string[] }).lines).toEqual([
      'serviceentry.networking.istio.io/www.google.com created',
      'serviceentry.networking.istio.io/example.org created',
    ]);
  });

  it('deletes what the templates describe, and deleting again is no error', async () => {
    const input = {
      files: ['tls-passthrough/service-entries.yaml'],
      values: { hosts: ['example.org'] },
      delete: true,
    };
    const first = await lab.run(manifestApplyAction, input);
    expect(first.output).toMatchObject({
      action: 'delete',
      lines: ['serviceentry.networking.istio.io "example.org" deleted from default namespace'],
      rollouts: [],
    });
    const second = await lab.run(manifestApplyAction, input);
    expect(second.output).toMatchObject({ lines: [] });
  });

  it('applies into the namespace the step names', async () => {
    await lab.runtime.kubectl(['create', 'namespace', 'probes']);
    const { output } = await lab.run(manifestApplyAction, {
      files: ['common/curl.yaml'],
      namespace: 'probes',
      waitFor: [{ name: 'curl' }],
    });
    expect(output).toMatchObject({ rollouts: ['deployment "curl" successfully rolled out'] });
    const pods = await lab.runtime.kubectl(['-n', 'probes', 'get', 'pods', '-l', 'app=curl', '-o', 'name']);
    expect(pods.stdout).toMatch(/^pod\/curl-[a-z0-9]{10}-[a-z0-9]{5}$/);
  });

  it('fails at once, naming the file and field, on a template problem; nothing is applied', async () => {
    const err = await lab
      .run(manifestApplyAction, {
        files: ['common/curl.yaml', 'tls-passthrough/service-entries.yaml'],
        values: { hosts: 'www.google.com' },
      })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ type: 'ManifestError', nonRetryable: true });
    expect((err as Error).message).toMatch(
      /manifests\/tls-passthrough\/service-entries\.yaml: document 1: values\.hosts is not a list/,
    );

    const missing = await lab
      .run(manifestApplyAction, { files: ['common/nope.yaml'] })
      .catch((e: unknown) => e);
    expect(missing).toMatchObject({ type: 'ManifestError', nonRetryable: true });
    // A path out of manifests/ is refused by the input's schema, as validation refuses it.
    const outside = await lab
      .run(manifestApplyAction, { files: ['../package.json'] })
      .catch((e: unknown) => e);
    expect(outside).toMatchObject({ type: 'InputError', nonRetryable: true });
    expect((outside as Error).message).toMatch(/must be a path inside the manifests\/ folder/);
  });

  it('summarises the step with its files', () => {
    const parse = (input: unknown) => manifestApplyAction.input.parse(input);
    expect(manifestApplyAction.summary(parse({ files: ['istio/service-entries.yaml'] }))).toBe(
      'manifest.apply istio/service-entries.yaml',
    );
    expect(manifestApplyAction.summary(parse({ files: ['a.yaml', 'b.yaml'], delete: true }))).toBe(
      'manifest.apply (delete) a.yaml b.yaml',
    );
  });
});
