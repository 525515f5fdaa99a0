/**
 * probe.curl against the simulated lab, walking the proof of concept: REGISTRY_ONLY blocks, the
 * ServiceEntries let traffic out directly, the egress routing alone fails, the tunnel filter sends it
 * through the external proxy (which logs it); then mutual TLS to the real nginx of the external app.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import { certsConfigmapAction } from '../activities/certs-configmap.js';
import { certsGenerateAction } from '../activities/certs-generate.js';
import { istioInstallAction } from '../activities/istio-install.js';
import { kubeLabelAction } from '../activities/kube-label.js';
import { manifestApplyAction } from '../activities/manifest-apply.js';
import { probeCurlAction, type ProbeCurlOutput } from '../activities/probe-curl.js';
import { vmUpAction } from '../activities/vm-up.js';
import type { SimLab } from './support/sim-lab.js';
import { clusterLab } from './support/sim-cluster.js';

let lab: SimLab;

beforeAll(async () => {
  // Istio config reaches the proxies at once here: these tests are about what each config does.
  lab = await clusterLab({ configDelay: '0s' });
  await lab.run(istioInstallAction, {
    profile: 'demo',
    set: {
      'meshConfig.accessLogFile': '/dev/stdout',
      'meshConfig.outboundTrafficPolicy.mode': 'REGISTRY_ONLY',
    },
  });
  await lab.run(kubeLabelAction, { name: 'default', labels: { 'istio-injection': 'enabled' } });
}, 60_000);
afterAll(async () => {
  await lab?.close();
});

const probe = async (input: Record<string, unknown>) =>
  (await lab.run(probeCurlAction, input)).output as ProbeCurlOutput;
const failure = (input: Record<string, unknown>): Promise<Error> =>
  lab.run(probeCurlAction, input).then(
    (outcome) => new Error(`expected a failure, got ${JSON.stringify(outcome.output)}`),
    (e: unknown) => e as Error,
  );
const apply = (files: string[], extra: Record<string, unknown> = {}) =>
  lab.run(manifestApplyAction, { files, ...extra });
const proxyLog = () => readFile(lab.def.machines['external-proxy']!.files.accessLog!, 'utf8').catch(() => '');

describe('probe.curl', () => {
  it('fails retryably while no client pod runs', async () => {
    const err = await failure({ url: 'https://www.google.com' });
    expect(err).toMatchObject({ type: 'ExpectationError', nonRetryable: false });
    expect(err.message).toMatch(/no Running pod matches app=curl in namespace default yet/);
  });

  it('sees REGISTRY_ONLY reset a host without a ServiceEntry', async () => {
    await apply(['common/curl.yaml'], { waitFor: [{ name: 'curl' }] });
    const blocked = await probe({ url: 'https://www.google.com', expect: { fails: true } });
    expect(blocked).toMatchObject({
      pod: expect.stringMatching(/^curl-/),
      container: 'curl',
      status: 0,
      exitCode: 35,
      stderrTail: 'curl: (35) Recv failure: Connection reset by peer',
    });
    const err = await failure({ url: 'https://www.google.com' });
    expect(err).toMatchObject({ type: 'ExpectationError', nonRetryable: false });
    expect(err.message).toMatch(
      /expected HTTP 200 from https:\/\/www\.google\.com in curl-\S+, got HTTP 000, curl exit 35/,
    );
  });

  it('gets through directly with the ServiceEntries, without touching the proxy', async () => {
    await apply(['tls-passthrough/service-entries.yaml']);
    expect(await probe({ url: 'https://www.google.com' })).toMatchObject({
      status: 200,
      exitCode: 0,
      stderrTail: '',
    });
    const err = await failure({ url: 'https://www.wikipedia.org', expect: { fails: true } });
    expect(err.message).toMatch(
      /expected https:\/\/www\.wikipedia\.org to fail from curl-\S+, but it answered \(HTTP 200/,
    );
    expect(await proxyLog()).toBe('');
  });

  it('fails while the egress gateway has no tunnel listener, and goes through the proxy once it has', async () => {
    await apply(['tls-passthrough/egress-routing.yaml']);
    expect(await probe({ url: 'https://www.google.com', expect: { fails: true } })).toMatchObject({
      exitCode: 35,
    });
    expect(await proxyLog()).toBe('');

    await apply(['tls-passthrough/tcp-tunnel-filter.yaml']);
    expect(await probe({ url: 'https://www.google.com' })).toMatchObject({ status: 200 });
    expect(await probe({ url: 'https://www.wikipedia.org', maxTime: '5s' })).toMatchObject({ status: 200 });
    const lines = (await proxyLog()).trim().split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[1]).toMatch(
      /^\[\d{4}-\d\d-\d\dT[\d:.]+Z\] 192\.168\.56\.20:\d+ "CONNECT 216\.58\.209\.4:443 - HTTP\/1\.1" - 200 - DC www\.google\.com:443 DownstreamEnd$/,
    );
    expect(lines[3]).toMatch(
      /"CONNECT 91\.198\.174\.192:443 - HTTP\/1\.1" - 200 - DC www\.wikipedia\.org:443 DownstreamEnd$/,
    );
  });

  it('asks the cluster for the client pod once, and again once that pod is gone', async () => {
    // Each pick is kept with set(): count them.
    const set = lab.pods.set.bind(lab.pods);
    let picked = 0;
    lab.pods.set = (...args) => {
      picked++;
      set(...args);
    };
    try {
      const first = await probe({ url: 'https://www.google.com' });
      expect((await probe({ url: 'https://www.wikipedia.org' })).pod).toBe(first.pod);
      expect(picked).toBe(0);

      // The pod is replaced behind the worker's back (a changed template applied by hand): the kept name
      // now says NotFound.
      const rendered = path.join(lab.stateRoot, 'runs', 'test', 'manifests', 'common', 'curl.yaml');
      type Doc = { kind?: string; spec?: { template: { metadata: { annotations?: object } } } };
      const docs = parseAllDocuments(await readFile(rendered, 'utf8')).map((d) => d.toJS() as Doc);
      docs.find((d) => d.kind === 'Deployment')!.spec!.template.metadata.annotations = {
        'test/replaced': 'yes',
      };
      const changed = path.join(lab.stateRoot, 'curl-replaced.yaml');
      await writeFile(changed, docs.map((d) => stringify(d)).join('---\n'));
      await lab.runtime.kubectl(['apply', '-f', changed]);
      await lab.runtime.kubectl(['rollout', 'status', 'deployment/curl', '--timeout=60s']);
      const again = await probe({ url: 'https://www.google.com' });
      expect(again).toMatchObject({ status: 200, pod: expect.stringMatching(/^curl-/) });
      expect(again.pod).not.toBe(first.pod);
      expect(picked).toBe(1);
    } finally {
      lab.pods.set = set;
    }
  });

  it('fails as kubectl does for a container the pod does not have', async () => {
    const err = await failure({ url: 'https://www.google.com', container: 'sleep' });
    expect(err).toMatchObject({ type: 'LabToolError', nonRetryable: false });
    expect(err.message).toMatch(/container not found \("sleep"\)/);
  });

  it("reaches the external app's real nginx with the client certificate from the ConfigMap and Secret", async () => {
    await lab.run(certsGenerateAction, {});
    await lab.run(vmUpAction, { machines: ['external-app'] });
    await apply(['mtls/external-app.yaml']);
    const client = { url: 'https://external-app.default.svc.cluster.local', selector: 'app=curl-mtls' };
    // The client pod waits for its certificate volumes.
    await apply(['mtls/client.yaml']);
    expect((await failure(client)).message).toMatch(/no Running pod matches app=curl-mtls/);

    await lab.run(certsConfigmapAction, {});
    await apply(['mtls/client.yaml'], { waitFor: [{ name: 'curl-mtls' }] });
    const certArgs = [
      '--cert',
      '/etc/pki/tls/certs/client-crt.pem',
      '--key',
      '/etc/pki/tls/private/client-key.pem',
    ];
    expect(
      await probe({ ...client, curlArgs: [...certArgs, '--cacert', '/etc/pki/tls/certs/ca.pem'] }),
    ).toMatchObject({
      container: 'curl-mtls',
      status: 200,
      exitCode: 0,
    });
    expect(await probe({ ...client, curlArgs: [...certArgs, '--insecure'] })).toMatchObject({ status: 200 });
    const nginxLog = await readFile(lab.def.machines['external-app']!.files.accessLog!, 'utf8');
    expect(nginxLog).toMatch(
      /"GET \/ HTTP\/1\.1" 200 .*ssl_client_verify=SUCCESS sni="external-app\.default\.svc\.cluster\.local"/,
    );

    // Without a client certificate nginx answers 400; a file the pod does not have fails in curl itself.
    expect(await probe({ ...client, curlArgs: ['--insecure'], expect: { status: 400 } })).toMatchObject({
      status: 400,
    });
    const missing = await probe({
      ...client,
      curlArgs: [
        '--cert',
        '/etc/pki/tls/certs/nope.pem',
        '--key',
        '/etc/pki/tls/private/client-key.pem',
        '--insecure',
      ],
      expect: { fails: true },
    });
    expect(missing.exitCode).toBe(58);
    expect(missing.stderrTail).toContain('/etc/pki/tls/certs/nope.pem');
  }, 90_000);

  it('summarises the step with the URL, the client and the expectation', () => {
    const summary = (input: unknown) => probeCurlAction.summary(probeCurlAction.input.parse(input));
    expect(summary({ url: 'https://www.google.com' })).toBe(
      'probe.curl https://www.google.com from app=curl, expect HTTP 200',
    );
    expect(summary({ url: 'https://www.google.com', expect: { fails: true } })).toBe(
      'probe.curl https://www.google.com from app=curl, expect no answer',
    );
  });

  it('gives what curl saw as evidence', () => {
    const input = probeCurlAction.input.parse({ url: 'https://www.google.com', expect: { fails: true } });
    const output = {
      pod: 'curl-1',
      container: 'curl',
      status: 0,
      exitCode: 35,
      stderrTail: 'curl: (35) Recv failure: Connection reset by peer',
    };
    expect(probeCurlAction.evidence!(output, input)).toEqual([
      'no HTTP answer from https://www.google.com: curl exit 35 (curl: (35) Recv failure: Connection reset by peer), in pod curl-1',
    ]);
    expect(probeCurlAction.evidence!({ ...output, status: 200, exitCode: 0, stderrTail: '' }, input)).toEqual(
      ['HTTP 200 from https://www.google.com, in pod curl-1'],
    );
  });
});
