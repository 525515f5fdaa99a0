/**
 * The kubeconfig an existing lab names, cut down to one context as `kubectl config view --minify
 * --flatten` does: what kubeconfig.fetch copies into the run's folder.
 */
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import { minifyKubeconfig } from '../activities/kubeconfig-fetch.js';

const KUBECONFIG = `
apiVersion: v1
kind: Config
current-context: dev
clusters:
  - name: dev-cluster
    cluster: { server: 'https://dev:6443', certificate-authority: certs/ca.crt }
  - name: prod-cluster
    cluster: { server: 'https://prod:6443', certificate-authority-data: UFJPRA== }
contexts:
  - name: dev
    context: { cluster: dev-cluster, user: dev-user, namespace: team }
  - name: prod
    context: { cluster: prod-cluster, user: prod-user }
  - name: broken
    context: { cluster: gone, user: dev-user }
users:
  - name: dev-user
    user: { client-certificate: certs/me.crt, client-key: /abs/never-read.key }
  - name: prod-user
    user: { tokenFile: tokens/prod }
`;

/** A fresh copy of the kubeconfig above, as data. */
const config = () => parse(KUBECONFIG) as Parameters<typeof minifyKubeconfig>[0];

describe('minifyKubeconfig', () => {
  let file: string;
  beforeAll(async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'kubeconfig-'));
    file = path.join(dir, 'config');
    await writeFile(file, KUBECONFIG);
  });

  it('keeps only the named context, its cluster and its user, with a token file made absolute', () => {
    const copy = minifyKubeconfig(config(), 'prod', file);
    expect(copy).toEqual({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        {
          name: 'prod-cluster',
          cluster: { server: 'https://prod:6443', 'certificate-authority-data': 'UFJPRA==' },
        },
      ],
      contexts: [{ name: 'prod', context: { cluster: 'prod-cluster', user: 'prod-user' } }],
      users: [{ name: 'prod-user', user: { tokenFile: path.join(path.dirname(file), 'tokens', 'prod') } }],
      'current-context': 'prod',
    });
  });

  it('inlines the files the current context names, relative to the kubeconfig, and says which one is missing', async () => {
    expect(() => minifyKubeconfig(config(), undefined, file)).toThrow(
      `${file} names ${path.join(path.dirname(file), 'certs', 'ca.crt')} as certificate-authority, which cannot be read: ENOENT`,
    );
    const certs = path.join(path.dirname(file), 'certs');
    await mkdir(certs, { recursive: true });
    await writeFile(path.join(certs, 'ca.crt'), 'CA');
    await writeFile(path.join(certs, 'me.crt'), 'ME');
    const edited = config()!;
    delete edited.users![0]!.user!['client-key'];
    const copy = minifyKubeconfig(edited, undefined, file);
    expect(copy.clusters).toEqual([
      { name: 'dev-cluster', cluster: { server: 'https://dev:6443', 'certificate-authority-data': 'Q0E=' } },
    ]);
    expect(copy.users).toEqual([{ name: 'dev-user', user: { 'client-certificate-data': 'TUU=' } }]);
    expect(copy.contexts).toEqual([
      { name: 'dev', context: { cluster: 'dev-cluster', user: 'dev-user', namespace: 'team' } },
    ]);
  });

  it('names the context or cluster that is not there, and the ones that are', () => {
    expect(() => minifyKubeconfig(config(), 'staging', file)).toThrow(
      `${file} has no context staging (contexts: dev, prod, broken)`,
    );
    expect(() => minifyKubeconfig(config(), 'broken', file)).toThrow(
      `${file}: context broken names cluster gone, which it does not define`,
    );
    expect(() => minifyKubeconfig({}, undefined, file)).toThrow(
      `${file} names no current context: set cluster.context in the lab file`,
    );
  });
});
