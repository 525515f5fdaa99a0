import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { APP_HOST, certFiles, certsGenerateAction } from '../activities/certs-generate.js';
import { vmUpAction } from '../activities/vm-up.js';
import { selfSigned, signedBy } from '../sim/lib/openssl.js';
import { simLab, type SimLab } from './support/sim-lab.js';

let lab: SimLab;
let port: number;

beforeAll(async () => {
  lab = await simLab();
  await lab.run(certsGenerateAction, {});
  await lab.run(vmUpAction, { machines: ['external-app'] });
  ({ port } = JSON.parse(await readFile(path.join(lab.simState, 'external-app.json'), 'utf8')) as {
    port: number;
  });
});
afterAll(async () => {
  await lab?.close();
});

/** curl to the app by its mesh name, resolved to loopback, trusting only the lab's CA; returns the HTTP status. */
async function curl(clientArgs: string[]): Promise<string> {
  const result = await execa(
    'curl',
    [
      ...['-sS', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '10'],
      ...['--resolve', `${APP_HOST}:${port}:127.0.0.1`, '--cacert', certFiles(lab.def.certsDir).caCert],
      ...clientArgs,
      `https://${APP_HOST}:${port}/`,
    ],
    { reject: false },
  );
  return result.stdout;
}

const accessLog = () => readFile(lab.def.machines['external-app']!.files.accessLog!, 'utf8');

describe('mutual TLS between certs.generate and the simulated external-app (a real nginx)', () => {
  it('accepts the generated client certificate and logs its subject', async () => {
    const f = certFiles(lab.def.certsDir);
    expect(await curl(['--cert', f.clientCert, '--key', f.clientKey])).toBe('200');
    expect(await accessLog()).toMatch(
      /"GET \/ HTTP\/1\.1" 200 .*ssl_client_s_dn="CN=curl-client" ssl_client_verify=SUCCESS/,
    );
  });

  it('answers 400 to a client without a certificate', async () => {
    expect(await curl([])).toBe('400');
    expect(await accessLog()).toMatch(/"GET \/ HTTP\/1\.1" 400 .*ssl_client_verify=NONE/);
  });

  it('answers 400 to a certificate from another CA, even with the same name', async () => {
    const dir = path.join(lab.stateRoot, 'other-ca');
    await mkdir(dir, { recursive: true });
    const file = (name: string) => path.join(dir, name);
    await selfSigned({ subject: '/CN=other CA', days: 2, keyOut: file('ca.key'), certOut: file('ca.crt') });
    await signedBy(
      { cert: file('ca.crt'), key: file('ca.key') },
      {
        subject: '/CN=curl-client',
        days: 2,
        keyOut: file('client.key'),
        csrOut: file('client.csr'),
        certOut: file('client.crt'),
      },
    );
    expect(await curl(['--cert', file('client.crt'), '--key', file('client.key')])).toBe('400');
    expect(await accessLog()).toMatch(/"GET \/ HTTP\/1\.1" 400 .*ssl_client_verify=FAILED/);
  });
});
