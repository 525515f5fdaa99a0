/**
 * The admin kubeconfig the simulated `k8s` machine holds, shaped like k0s's
 * /var/lib/k0s/pki/admin.conf. Its CA and client certificates are real ones made at boot; their keys
 * are thrown away, and `client-key-data` carries a placeholder, because no stand-in speaks TLS.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { selfSigned, signedBy } from './openssl.js';

/** Where the real API server answers on the k8s machine (k0s's admin.conf says localhost). */
export const API_SERVER = 'https://localhost:6443';

/** Renders the kubeconfig with fresh certificates. */
export async function renderKubeconfig(server = API_SERVER): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tunnel-lab-sim-k0s-'));
  try {
    const file = (name: string) => path.join(dir, name);
    await selfSigned({
      subject: '/CN=kubernetes-ca',
      days: 365,
      keyOut: file('ca.key'),
      certOut: file('ca.crt'),
    });
    await signedBy(
      { cert: file('ca.crt'), key: file('ca.key') },
      {
        subject: '/O=system:masters/CN=admin',
        days: 365,
        keyOut: file('admin.key'),
        csrOut: file('admin.csr'),
        certOut: file('admin.crt'),
      },
    );
    const b64 = async (name: string) => (await readFile(file(name))).toString('base64');
    return stringify({
      apiVersion: 'v1',
      clusters: [{ cluster: { server, 'certificate-authority-data': await b64('ca.crt') }, name: 'k0s' }],
      contexts: [{ context: { cluster: 'k0s', namespace: 'default', user: 'admin' }, name: 'Default' }],
      'current-context': 'Default',
      kind: 'Config',
      preferences: {},
      users: [
        {
          name: 'admin',
          user: {
            'client-certificate-data': await b64('admin.crt'),
            'client-key-data': Buffer.from('simulated lab: no key material\n').toString('base64'),
          },
        },
      ],
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Writes the kubeconfig to `file` (owner-only, as root-only on the VM). */
export async function writeKubeconfig(file: string, server = API_SERVER): Promise<void> {
  await writeFile(file, await renderKubeconfig(server), { mode: 0o600 });
}
