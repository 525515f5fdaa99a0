import { X509Certificate } from 'node:crypto';
import { copyFile, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { parse } from 'yaml';
import { certFiles, certsGenerateAction, type CertsGenerateOutput } from '../activities/certs-generate.js';
import { certsConfigmapAction, type CertsConfigmapOutput } from '../activities/certs-configmap.js';
import { vmUpAction } from '../activities/vm-up.js';
import { selfSigned } from '../sim/lib/openssl.js';
import { simLab, type SimLab } from './support/sim-lab.js';

// Records each call's argv and a copy of the manifest it applies, and answers like kubectl apply.
const FAKE_KUBECTL = `#!/usr/bin/env bash
set -euo pipefail
here="$(dirname "\${BASH_SOURCE[0]}")"
printf '%s\\n' "$*" >>"$here/kubectl-calls.log"
file=""
while [[ $# -gt 0 ]]; do
  if [[ "$1" == "-f" ]]; then file="$2"; shift; fi
  shift
done
cp -p "$file" "$here/applied-$(basename "$file")"
kind="$(awk '/^kind:/ { print tolower($2) }' "$file")"
name="$(awk '/^  name:/ { print $2; exit }' "$file")"
echo "$kind/$name created"
`;

const outputs: unknown[] = [];
let lab: SimLab;
let toolsDir: string;

beforeAll(async () => {
  lab = await simLab((def, stateRoot) => {
    def.tools.kubectl = path.join(stateRoot, 'tools', 'kubectl');
  });
  toolsDir = path.join(lab.stateRoot, 'tools');
  await mkdir(toolsDir, { recursive: true });
  await writeFile(path.join(toolsDir, 'kubectl'), FAKE_KUBECTL, { mode: 0o755 });
});
afterAll(async () => {
  await lab?.close();
});

async function generate(input: unknown = {}): Promise<CertsGenerateOutput> {
  const outcome = await lab.run(certsGenerateAction, input);
  outputs.push(outcome.output);
  return outcome.output as CertsGenerateOutput;
}

const files = () => certFiles(lab.def.certsDir);
const fingerprint = async (file: string) => new X509Certificate(await readFile(file)).fingerprint256;
const mode = async (file: string) => (await stat(file)).mode & 0o777;

describe('certs.generate', () => {
  it('makes a CA, a server and a client certificate that verify, with owner-only keys', async () => {
    const out = await generate();
    expect(out).toMatchObject({ certsDir: path.join(lab.labState, 'certs'), generated: true });
    const f = files();
    expect(out.certificates.ca).toMatchObject({ path: f.caCert, sha256: await fingerprint(f.caCert) });
    expect(out.certificates.server).toMatchObject({
      path: f.serverCert,
      sha256: await fingerprint(f.serverCert),
    });
    expect(out.certificates.client).toMatchObject({ path: f.clientCert, subject: 'CN=curl-client' });
    expect(out.keyFiles).toEqual({ ca: f.caKey, server: f.serverKey, client: f.clientKey });
    for (const key of [f.caKey, f.serverKey, f.clientKey]) expect(await mode(key)).toBe(0o600);

    const verify = await execa('openssl', ['verify', '-CAfile', f.caCert, f.serverCert, f.clientCert]);
    expect(verify.stdout).toBe(`${f.serverCert}: OK\n${f.clientCert}: OK`);
    const server = new X509Certificate(await readFile(f.serverCert));
    expect(server.subject).toBe('CN=external-app.default.svc.cluster.local');
    expect(server.subjectAltName).toContain('DNS:external-app.default.svc.cluster.local');
    expect(server.subjectAltName).toContain('IP Address:192.168.56.30');
    const client = new X509Certificate(await readFile(f.clientCert));
    expect(client.keyUsage).toContain('1.3.6.1.5.5.7.3.2');
    const days = (Date.parse(client.validTo) - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(29);
    expect(days).toBeLessThanOrEqual(30.01);
  });

  it('keeps valid certificates on the next run', async () => {
    const before = await fingerprint(files().caCert);
    const out = await generate();
    expect(out).toMatchObject({ generated: false, reason: 'the current certificates are valid' });
    expect(out.certificates.ca.sha256).toBe(before);
  });

  it('replaces them when the client name changes, a file is missing, the chain breaks or they expire soon', async () => {
    expect(await generate({ clientCn: 'sleep-client' })).toMatchObject({
      generated: true,
      reason: 'the client certificate is not for CN=sleep-client',
      certificates: { client: { subject: 'CN=sleep-client' } },
    });

    await rm(files().serverKey);
    expect(await generate({ clientCn: 'sleep-client' })).toMatchObject({
      generated: true,
      reason: 'external-app.key is missing',
    });

    // A CA from elsewhere: the certificates no longer verify against it.
    const otherDir = path.join(lab.stateRoot, 'other-ca');
    await mkdir(otherDir, { recursive: true });
    await selfSigned({
      subject: '/CN=other',
      days: 5,
      keyOut: path.join(otherDir, 'ca.key'),
      certOut: files().caCert,
    });
    expect(await generate({ clientCn: 'sleep-client' })).toMatchObject({
      generated: true,
      reason: 'the certificates do not verify against ca.crt',
    });

    await generate({ clientCn: 'sleep-client', days: 1, force: true });
    expect(await generate({ clientCn: 'sleep-client' })).toMatchObject({
      generated: true,
      reason: 'the ca certificate expires within a day',
    });
    expect(await generate({ clientCn: 'sleep-client', force: true })).toMatchObject({
      generated: true,
      reason: 'forced',
    });
    expect(await generate({})).toMatchObject({
      generated: true,
      certificates: { client: { subject: 'CN=curl-client' } },
    });
  });

  it('rejects a client name openssl would misread', async () => {
    const err = await lab.run(certsGenerateAction, { clientCn: 'a/CN=b' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ type: 'InputError', nonRetryable: true });
  });
});

describe('certs.configmap', () => {
  it('applies a ConfigMap with the client certificate and CA and a Secret with the key', async () => {
    const outcome = await lab.run(certsConfigmapAction, {});
    outputs.push(outcome.output);
    const out = outcome.output as CertsConfigmapOutput;
    const f = files();
    const manifests = path.join(lab.stateRoot, 'runs', 'test', 'manifests');
    expect(out).toEqual({
      namespace: 'default',
      configMap: {
        name: 'client-certs',
        keys: ['client-crt.pem', 'ca.pem'],
        manifest: path.join(manifests, 'default.configmap.client-certs.yaml'),
      },
      secret: {
        name: 'client-key',
        keys: ['client-key.pem'],
        manifest: path.join(manifests, 'default.secret.client-key.yaml'),
      },
      clientCertificate: expect.objectContaining({
        path: f.clientCert,
        sha256: await fingerprint(f.clientCert),
      }),
      caSha256: await fingerprint(f.caCert),
      applied: ['configmap/client-certs created', 'secret/client-key created'],
    });

    const calls = (await readFile(path.join(toolsDir, 'kubectl-calls.log'), 'utf8')).trim().split('\n');
    expect(calls).toEqual([
      `--kubeconfig ${path.join(lab.labState, 'kubeconfig')} apply -f ${out.configMap.manifest}`,
      `--kubeconfig ${path.join(lab.labState, 'kubeconfig')} apply -f ${out.secret.manifest}`,
    ]);
    const configMap = parse(
      await readFile(path.join(toolsDir, `applied-${path.basename(out.configMap.manifest)}`), 'utf8'),
    );
    expect(configMap).toMatchObject({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'client-certs', namespace: 'default' },
      data: {
        'client-crt.pem': await readFile(f.clientCert, 'utf8'),
        'ca.pem': await readFile(f.caCert, 'utf8'),
      },
    });
    const secretFile = path.join(toolsDir, `applied-${path.basename(out.secret.manifest)}`);
    const secret = parse(await readFile(secretFile, 'utf8'));
    expect(secret).toMatchObject({
      kind: 'Secret',
      type: 'Opaque',
      metadata: { name: 'client-key', namespace: 'default' },
    });
    expect(Buffer.from(secret.data['client-key.pem'] as string, 'base64').toString()).toBe(
      await readFile(f.clientKey, 'utf8'),
    );
    expect(await mode(out.secret.manifest)).toBe(0o600);
    expect(await mode(secretFile)).toBe(0o600);
  });

  it('names its objects and namespace as asked', async () => {
    const outcome = await lab.run(certsConfigmapAction, {
      namespace: 'mtls',
      configMap: 'certs',
      secret: 'key',
    });
    outputs.push(outcome.output);
    expect((outcome.output as CertsConfigmapOutput).applied).toEqual([
      'configmap/certs created',
      'secret/key created',
    ]);
  });

  it('fails non-retryably without certificates', async () => {
    await rm(files().clientKey);
    const err = await lab.run(certsConfigmapAction, {}).catch((e: unknown) => e);
    expect(err).toMatchObject({ type: 'MissingCertificatesError', nonRetryable: true });
    expect((err as Error).message).toMatch(/client\.key is missing: run certs.generate first/);
  });
});

describe('certs.configmap against the simulated cluster', () => {
  let simulated: SimLab;
  beforeAll(async () => {
    simulated = await simLab();
    await simulated.run(certsGenerateAction, {});
    await simulated.run(vmUpAction, { machines: ['k8s'] });
    // What kubeconfig.fetch leaves for kubectl: the k8s machine's admin kubeconfig.
    await copyFile(simulated.def.machines.k8s!.files.kubeconfig!, simulated.runtime.kubeconfig);
  });
  afterAll(async () => {
    await simulated?.close();
  });

  it('creates the ConfigMap and the Secret that kubectl then returns', async () => {
    const outcome = await simulated.run(certsConfigmapAction, {});
    outputs.push(outcome.output);
    expect((outcome.output as CertsConfigmapOutput).applied).toEqual([
      'configmap/client-certs created',
      'secret/client-key created',
    ]);
    const f = certFiles(simulated.def.certsDir);
    const get = async (kind: string, name: string) =>
      JSON.parse(
        (await simulated.runtime.kubectl(['get', kind, name, '-n', 'default', '-o', 'json'])).stdout,
      ) as {
        data: Record<string, string>;
      };
    expect((await get('configmap', 'client-certs')).data).toEqual({
      'client-crt.pem': await readFile(f.clientCert, 'utf8'),
      'ca.pem': await readFile(f.caCert, 'utf8'),
    });
    const secret = await get('secret', 'client-key');
    expect(Buffer.from(secret.data['client-key.pem']!, 'base64').toString()).toBe(
      await readFile(f.clientKey, 'utf8'),
    );

    const again = await simulated.run(certsConfigmapAction, {});
    outputs.push(again.output);
    expect((again.output as CertsConfigmapOutput).applied).toEqual([
      'configmap/client-certs unchanged',
      'secret/client-key unchanged',
    ]);
  });
});

describe('the outputs of the certificate actions', () => {
  it('carry no key material', () => {
    expect(outputs.length).toBeGreaterThan(8);
    expect(JSON.stringify(outputs)).not.toMatch(/PRIVATE KEY|BEGIN/);
  });
});
