import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { stringify } from 'yaml';
import { z } from 'zod';
import { MissingCertificatesError } from '../src/errors.js';
import { ownerLabels } from '../src/lab/ownership.js';
import { defineAction, type ActionContext } from './action.js';
import { certFiles, certificateInfo, type CertificateInfo } from './certs-generate.js';

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Input of certs.configmap. */
export const certsConfigmapInput = z
  .object({
    namespace: z
      .string()
      .max(63)
      .regex(DNS_LABEL, 'must be a DNS label')
      .optional()
      .describe(
        "Namespace of the ConfigMap and the Secret (where the client pod runs); the lab's `namespace` by default.",
      ),
    configMap: z
      .string()
      .max(253)
      .regex(DNS_SUBDOMAIN, 'must be a DNS subdomain name')
      .default('client-certs')
      .describe('ConfigMap that gets the client certificate (client-crt.pem) and the CA (ca.pem).'),
    secret: z
      .string()
      .max(253)
      .regex(DNS_SUBDOMAIN, 'must be a DNS subdomain name')
      .default('client-key')
      .describe('Secret that gets the client private key (client-key.pem).'),
  })
  .strict();

/** Output of certs.configmap: object names, manifest paths and fingerprints, no key material. */
export interface CertsConfigmapOutput {
  namespace: string;
  configMap: { name: string; keys: string[]; manifest: string };
  secret: { name: string; keys: string[]; manifest: string };
  clientCertificate: CertificateInfo;
  caSha256: string;
  /** What kubectl apply reported, one line per object (e.g. `configmap/client-certs created`). */
  applied: string[];
}

/** The objects' labels: part of the lab, and which run applied them. */
const labels = (ctx: ActionContext) => ({
  'app.kubernetes.io/part-of': 'tunnel-lab',
  ...ownerLabels(ctx.run),
});

/** Publishes the client certificate (ConfigMap) and its key (Secret) for the pod that calls external-app. */
export const certsConfigmapAction = defineAction({
  name: 'certs.configmap',
  description:
    'Put the client certificate and the CA into a ConfigMap (client-crt.pem, ca.pem) and the client key into ' +
    'a Secret (client-key.pem) with kubectl apply, for the pod that calls external-app with mutual TLS.',
  input: certsConfigmapInput,
  policy: {
    timeout: '2m',
    maxTimeout: '15m',
    heartbeatTimeout: '30s',
    retry: { attempts: 5, initialInterval: '2s', backoff: 2, maxInterval: '30s' },
    maxAttempts: 20,
  },
  idempotent: true,
  summary: (input) =>
    `certs.configmap ${input.namespace ? `${input.namespace}/` : ''}${input.configMap} + secret ${input.secret}`,
  examples: [
    {
      description: 'Client certificate for the curl pod in default',
      yaml: 'id: client-certs\nuses: certs.configmap',
    },
    {
      description: 'Into another namespace',
      yaml: 'id: client-certs\nuses: certs.configmap\nwith:\n  namespace: mtls-test',
    },
  ],
  changes: (input, { lab }) => [
    `apply ConfigMap ${input.namespace ?? lab.namespace}/${input.configMap} (the client certificate and the CA)`,
    `apply Secret ${input.namespace ?? lab.namespace}/${input.secret} (the client key)`,
  ],
  create: () => async (input, ctx) => {
    const lab = await ctx.lab();
    const namespace = input.namespace ?? lab.def.namespace;
    const files = certFiles(lab.def.certsDir);
    const read = async (file: string) => {
      try {
        return await readFile(file, 'utf8');
      } catch {
        throw new MissingCertificatesError(`${file} is missing: run certs.generate first`);
      }
    };
    const clientPem = await read(files.clientCert);
    const caPem = await read(files.caCert);
    const keyPem = await read(files.clientKey);
    let matches = false;
    try {
      matches = new X509Certificate(clientPem).checkPrivateKey(createPrivateKey(keyPem));
    } catch {
      // Unreadable PEM: reported below like a mismatch.
    }
    if (!matches) {
      throw new MissingCertificatesError(
        `${files.clientKey} does not match ${files.clientCert}: run certs.generate again`,
      );
    }

    const dir = path.join(ctx.stateDir, 'manifests');
    await mkdir(dir, { recursive: true });
    const configMapFile = path.join(dir, `${namespace}.configmap.${input.configMap}.yaml`);
    const secretFile = path.join(dir, `${namespace}.secret.${input.secret}.yaml`);
    await writeFile(
      configMapFile,
      stringify({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: input.configMap, namespace, labels: labels(ctx) },
        data: { 'client-crt.pem': clientPem, 'ca.pem': caPem },
      }),
    );
    // Removed first so that the key never lands in an older file with wider permissions.
    await rm(secretFile, { force: true });
    await writeFile(
      secretFile,
      stringify({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: input.secret, namespace, labels: labels(ctx) },
        type: 'Opaque',
        data: { 'client-key.pem': Buffer.from(keyPem).toString('base64') },
      }),
      { mode: 0o600 },
    );

    const applied: string[] = [];
    for (const file of [configMapFile, secretFile]) {
      const { stdout } = await lab.kubectl(['apply', '-f', file]);
      applied.push(
        ...stdout
          .split('\n')
          .map((l) => l.trim())
          .filter(Boolean),
      );
    }
    const output: CertsConfigmapOutput = {
      namespace,
      configMap: { name: input.configMap, keys: ['client-crt.pem', 'ca.pem'], manifest: configMapFile },
      secret: { name: input.secret, keys: ['client-key.pem'], manifest: secretFile },
      clientCertificate: certificateInfo(files.clientCert, clientPem),
      caSha256: new X509Certificate(caPem).fingerprint256,
      applied,
    };
    return output;
  },
});
