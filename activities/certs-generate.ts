import { createPrivateKey, randomBytes, X509Certificate } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { CommandNotFoundError, LabToolError } from '../src/errors.js';
import { runCommand, type CommandContext } from '../src/run-command.js';
import { defineAction } from './action.js';

/** The name clients use for external-app inside the mesh (its ServiceEntry host and the server certificate's CN). */
export const APP_HOST = 'external-app.default.svc.cluster.local';

/** The files certs.generate writes into the lab's certsDir (the app machine's provisioning reads the first three). */
export function certFiles(certsDir: string) {
  const file = (name: string) => path.join(certsDir, name);
  return {
    caCert: file('ca.crt'),
    caKey: file('ca.key'),
    serverCert: file('external-app.crt'),
    serverKey: file('external-app.key'),
    clientCert: file('client.crt'),
    clientKey: file('client.key'),
  };
}

/** Paths of the certificates and keys in a certsDir. */
export type CertFiles = ReturnType<typeof certFiles>;

/** What an output may say about a certificate: never anything of its key. */
export interface CertificateInfo {
  path: string;
  subject: string;
  /** SHA-256 fingerprint, colon-separated hex, as `openssl x509 -fingerprint -sha256` prints it. */
  sha256: string;
  notAfter: string;
}

/** Path, subject, fingerprint and expiry of a PEM certificate. */
export function certificateInfo(file: string, pem: string | Buffer): CertificateInfo {
  const cert = new X509Certificate(pem);
  return {
    path: file,
    subject: cert.subject.replace(/\n/g, ', '),
    sha256: cert.fingerprint256,
    notAfter: new Date(cert.validTo).toISOString(),
  };
}

/** Input of certs.generate. */
export const certsGenerateInput = z
  .object({
    days: z
      .number()
      .int()
      .min(1)
      .max(3650)
      .default(30)
      .describe('Validity of new certificates, in days (certificates expiring within a day are replaced).'),
    clientCn: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9 ._@-]{0,63}$/, 'letters, digits, space, . _ @ - (at most 64)')
      .default('curl-client')
      .describe('Common name of the client certificate; nginx logs it as CN=<clientCn>.'),
    force: z
      .boolean()
      .default(false)
      .describe('Make new certificates even when the current ones are still good.'),
  })
  .strict();

/** Output of certs.generate: paths and fingerprints, no key material. */
export interface CertsGenerateOutput {
  certsDir: string;
  /** False when valid certificates were kept. */
  generated: boolean;
  /** Why new certificates were made, or that the current ones were kept. */
  reason: string;
  certificates: { ca: CertificateInfo; server: CertificateInfo; client: CertificateInfo };
  /** Where the private keys are (mode 600); their content never leaves the files. */
  keyFiles: { ca: string; server: string; client: string };
}

const DAY_MS = 24 * 60 * 60 * 1000;
const TAIL = 600;

/** Runs openssl as every action runs a local program (heartbeat, cancellation, orphan tracking). */
async function openssl(args: string[], ctx: CommandContext, cwd?: string): Promise<string> {
  const result = await runCommand(ctx, 'openssl', args, {
    ...(cwd ? { cwd } : {}),
    notFound: 'openssl not found: install it (apt-get install openssl)',
  });
  if (result.exitCode !== 0) {
    throw new LabToolError(
      ['openssl', ...args],
      result.exitCode,
      (result.stderr || result.stdout).slice(-TAIL).trim(),
    );
  }
  return result.stdout;
}

function subjectAltNames(ip: string | undefined): string {
  return [`DNS:${APP_HOST}`, 'DNS:external-app', ...(ip ? [`IP:${ip}`] : [])].join(',');
}

/** Why the current certificates cannot stay, or undefined when they can. */
async function problemWith(
  files: CertFiles,
  input: z.output<typeof certsGenerateInput>,
  appIp: string | undefined,
  ctx: CommandContext,
): Promise<string | undefined> {
  const pem: Record<string, Buffer> = {};
  for (const [name, file] of Object.entries(files)) {
    try {
      pem[name] = await readFile(file);
    } catch {
      return `${path.basename(file)} is missing`;
    }
  }
  try {
    await openssl(['verify', '-CAfile', files.caCert, files.serverCert, files.clientCert], ctx);
  } catch (err) {
    if (err instanceof CommandNotFoundError) throw err;
    return 'the certificates do not verify against ca.crt';
  }
  const certs = {
    ca: new X509Certificate(pem.caCert!),
    server: new X509Certificate(pem.serverCert!),
    client: new X509Certificate(pem.clientCert!),
  };
  for (const [name, cert] of Object.entries(certs)) {
    if (new Date(cert.validTo).getTime() < Date.now() + DAY_MS)
      return `the ${name} certificate expires within a day`;
  }
  const pairs: [X509Certificate, Buffer, string][] = [
    [certs.ca, pem.caKey!, 'ca'],
    [certs.server, pem.serverKey!, 'server'],
    [certs.client, pem.clientKey!, 'client'],
  ];
  for (const [cert, key, name] of pairs) {
    try {
      if (!cert.checkPrivateKey(createPrivateKey(key)))
        return `the ${name} key does not match its certificate`;
    } catch {
      return `the ${name} key cannot be read`;
    }
  }
  if (!certs.client.subject.split('\n').includes(`CN=${input.clientCn}`))
    return `the client certificate is not for CN=${input.clientCn}`;
  const sans = (certs.server.subjectAltName ?? '').split(', ');
  // Node lists SANs as `DNS:name, IP Address:1.2.3.4`.
  const wanted = [`DNS:${APP_HOST}`, ...(appIp ? [`IP Address:${appIp}`] : [])];
  const missing = wanted.find((san) => !sans.includes(san));
  if (missing) return `the server certificate lacks ${missing}`;
  return undefined;
}

async function generate(
  files: CertFiles,
  input: z.output<typeof certsGenerateInput>,
  appIp: string | undefined,
  ctx: CommandContext,
): Promise<void> {
  const certsDir = path.dirname(files.caCert);
  await mkdir(certsDir, { recursive: true });
  // Built next to the final files and moved in at the end, so an interrupted run never leaves a mixed set.
  const work = await mkdtemp(path.join(certsDir, '.generate-'));
  try {
    const days = String(input.days);
    const serial = () => `0x${randomBytes(16).toString('hex')}`;
    const ecKey = (name: string) =>
      openssl(
        ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', name],
        ctx,
        work,
      );
    await ecKey('ca.key');
    await openssl(
      [
        ...['req', '-x509', '-new', '-key', 'ca.key', '-sha256', '-days', days, '-subj', '/CN=tunnel-lab CA'],
        ...[
          '-addext',
          'basicConstraints=critical,CA:TRUE',
          '-addext',
          'keyUsage=critical,keyCertSign,cRLSign',
        ],
        ...['-out', 'ca.crt'],
      ],
      ctx,
      work,
    );
    const leaf = async (name: string, cn: string, extensions: string[]) => {
      await ecKey(`${name}.key`);
      await openssl(
        ['req', '-new', '-key', `${name}.key`, '-subj', `/CN=${cn}`, '-out', `${name}.csr`],
        ctx,
        work,
      );
      await writeFile(path.join(work, `${name}.ext`), `${extensions.join('\n')}\n`);
      await openssl(
        [
          ...[
            'x509',
            '-req',
            '-in',
            `${name}.csr`,
            '-CA',
            'ca.crt',
            '-CAkey',
            'ca.key',
            '-set_serial',
            serial(),
          ],
          ...['-days', days, '-sha256', '-extfile', `${name}.ext`, '-out', `${name}.crt`],
        ],
        ctx,
        work,
      );
    };
    await leaf('external-app', APP_HOST, [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth',
      `subjectAltName=${subjectAltNames(appIp)}`,
    ]);
    await leaf('client', input.clientCn, [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature',
      'extendedKeyUsage=clientAuth',
    ]);
    for (const [name, target] of Object.entries(files)) {
      const source = path.join(work, path.basename(target));
      await chmod(source, name.endsWith('Key') ? 0o600 : 0o644);
      await rename(source, target);
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Makes the lab's CA, external-app server certificate and client certificate with openssl. */
export const certsGenerateAction = defineAction({
  name: 'certs.generate',
  description:
    "Create the lab's CA, the external-app server certificate (CN and SAN external-app.default.svc.cluster.local " +
    "and the app machine's IP) and a client certificate in the lab's certsDir; valid certificates are kept.",
  input: certsGenerateInput,
  policy: {
    timeout: '2m',
    maxTimeout: '10m',
    heartbeatTimeout: '30s',
    retry: { attempts: 2, initialInterval: '1s', backoff: 2, maxInterval: '10s' },
    maxAttempts: 5,
  },
  idempotent: true,
  summary: (input) =>
    `certs.generate client ${input.clientCn}, ${input.days} days${input.force ? ' (force)' : ''}`,
  examples: [
    { description: 'Certificates for the mTLS test', yaml: 'id: certs\nuses: certs.generate' },
    {
      description: 'A client certificate with another name, valid for 90 days',
      yaml: 'id: certs\nuses: certs.generate\nwith:\n  clientCn: sleep-client\n  days: 90',
    },
  ],
  changes: (input, { lab }) => [
    `write a CA, a server certificate and a client certificate (CN=${input.clientCn}) with their keys into ${lab.certsDir}, unless valid ones are there`,
  ],
  create: () => async (input, ctx) => {
    const lab = await ctx.lab();
    const files = certFiles(lab.def.certsDir);
    const appIp = Object.values(lab.def.machines).find((m) => m.role === 'app')?.ip;
    const problem = input.force ? 'forced' : await problemWith(files, input, appIp, ctx);
    if (problem) {
      ctx.log.info('generating certificates', { certsDir: lab.def.certsDir, reason: problem });
      await generate(files, input, appIp, ctx);
    }
    const info = async (file: string) => certificateInfo(file, await readFile(file));
    const output: CertsGenerateOutput = {
      certsDir: lab.def.certsDir,
      generated: problem !== undefined,
      reason: problem ?? 'the current certificates are valid',
      certificates: {
        ca: await info(files.caCert),
        server: await info(files.serverCert),
        client: await info(files.clientCert),
      },
      keyFiles: { ca: files.caKey, server: files.serverKey, client: files.clientKey },
    };
    return output;
  },
});
