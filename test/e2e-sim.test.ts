/**
 * The proof of concept's two scenarios end to end on the simulated lab, through the real dev server:
 * stand-in vagrant/kubectl/istioctl, a real sshd for the VMs' shells and a real nginx for the mTLS app.
 * Variants without the tunnel or without the ServiceEntries prove the checks can fail.
 */
import { mkdtemp, readdir, readFile, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { collectRunReport, writeReport } from '../src/report/index.js';
import { runDir } from '../src/state-layout.js';
import { temporalCli, temporalStart } from './support/processes.js';
import type { ScenarioInput, ScenarioResult } from '../workflows/types.js';
import { outcome, start, uniqueQueue, type TestLab, useWorker } from './support/temporal.js';
import {
  dropSteps,
  expectNoTunnelOnTheGateway,
  simLabVariant,
  tunnelForAnotherGateway,
  mapSteps,
  variant,
  type Step,
} from './support/variants.js';

let lab: TestLab;
useWorker('e2e', (created) => (lab = created));

const onSim = (playbook: string): ScenarioInput => ({ playbook, lab: 'sim', vars: { teardown: 'destroy' } });
const statuses = (result: ScenarioResult) => Object.fromEntries(result.steps.map((s) => [s.id, s.status]));

/** The files under `dir` that hold a private key, as PEM or base64-encoded PEM, with their modes. */
async function keyHolders(dir: string): Promise<{ file: string; mode: number }[]> {
  const holders: { file: string; mode: number }[] = [];
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const file = path.join(entry.parentPath, entry.name);
    const text = await readFile(file, 'latin1');
    const encoded = text.match(/LS0tLS1CRUdJTi[A-Za-z0-9+/=]+/g) ?? [];
    const holds =
      text.includes('PRIVATE KEY-----') ||
      encoded.some((b64) => Buffer.from(b64, 'base64').toString('latin1').includes('PRIVATE KEY'));
    if (holds) holders.push({ file, mode: (await stat(file)).mode });
  }
  return holders;
}

async function exportedHistory(workflowId: string): Promise<string> {
  const shown = await temporalCli(['workflow', 'show'], ['-w', workflowId, '--output', 'json']);
  return shown.stdout;
}

/** A matrix's cell ids over tunnel x proxyTransport x proxyProtocol, in its order, each ending in `more`. */
const gridIds = (tunnels: string[], more = ''): string[] =>
  tunnels.flatMap((tunnel) =>
    ['tls', 'plain'].flatMap((transport) =>
      ['HTTP/1.1', 'HTTP/2'].map(
        (protocol) => `tunnel=${tunnel},proxyTransport=${transport},proxyProtocol=${protocol}${more}`,
      ),
    ),
  );

/** Runs a matrix playbook on the simulated lab: its handle, its result, and each cell's steps by id. */
async function matrixRun(playbook: string) {
  const handle = await start(lab, { ...onSim(playbook) });
  const result = await outcome(handle);
  expect(result.error).toBeUndefined();
  const cells = [];
  for (const cell of result.cells ?? []) {
    const run = await outcome(lab.client.workflow.getHandle(cell.workflowId));
    cells.push({ cell, byId: Object.fromEntries(run.steps.map((st) => [st.id, st])) });
  }
  return { handle, result, cells };
}

describe('tls-passthrough on the simulated lab', () => {
  it('passes when started by `temporal workflow start`: blocked, direct without proxy lines, then tunnelled', async () => {
    const id = uniqueQueue('tls-passthrough');
    await temporalStart(lab.taskQueue, id, JSON.stringify(onSim('tls-passthrough')));
    const handle = lab.client.workflow.getHandle(id);
    const result = await outcome(handle);
    expect(result.error).toBeUndefined();
    expect(result.status).toBe('passed');
    const byId = Object.fromEntries(result.steps.map((s) => [s.id, s]));
    expect(byId.blocked!.output).toMatchObject({ status: 0, exitCode: 35 });
    expect(byId['direct-a']!.output).toMatchObject({ status: 200 });
    // Written by the real Envoy of the simulated proxy machine: the gateway's tunnel came from loopback and
    // Envoy's DNS cache resolved the target through the simulated internet.
    expect((byId['proxy-saw-a']!.output as { matches: string[] }).matches).toEqual([
      expect.stringMatching(
        /^\[\S+\] 127\.0\.0\.1:\d+ "CONNECT 127\.\d+\.\d+\.\d+:443 - HTTP\/1\.1" - 200 - DC www\.google\.com:443 DownstreamEnd$/,
      ),
    ]);
    expect(byId.teardown).toMatchObject({ status: 'passed', output: { mode: 'destroy' } });
    expect(await exportedHistory(id)).not.toMatch(/PRIVATE KEY/);
  }, 120_000);

  it('passes playbooks/tunnels.yaml: every way to tunnel, one child run per cell, each logged in its own protocol', async () => {
    const { handle, result, cells } = await matrixRun('tunnels');
    const ids = [
      ...gridIds(['tcp-tunnel-filter'], ',gatewayTls=DISABLE,tunnelMethod=CONNECT'),
      // The native tunnel also with Istio's mTLS from the sidecar to the gateway, which terminates it.
      ...gridIds(['native-tunnel']).flatMap((id) =>
        ['DISABLE', 'ISTIO_MUTUAL'].map((tls) => `${id},gatewayTls=${tls},tunnelMethod=CONNECT`),
      ),
    ];
    // The cells that cannot work, passing because their checks expect the failure: Istio's mTLS carried
    // through the EnvoyFilter's passthrough chain to a site that cannot answer it, and POST.
    ids.push(
      'tunnel=tcp-tunnel-filter,proxyTransport=tls,proxyProtocol=HTTP/1.1,gatewayTls=ISTIO_MUTUAL,tunnelMethod=CONNECT,tunnelRefused=true',
    );
    ids.push(
      'tunnel=native-tunnel,proxyTransport=tls,proxyProtocol=HTTP/1.1,gatewayTls=DISABLE,tunnelMethod=POST,tunnelRefused=true,proxyStatus=404',
    );
    expect(result.cells!.map((c) => [c.id, c.status])).toEqual(ids.map((id) => [id, 'passed']));
    const seen: Record<string, unknown> = {};
    for (const { cell, byId } of cells) {
      const applied = (byId.tunnel!.output as { lines: string[] }).lines;
      const [line] = (byId['proxy-saw-a']!.output as { matches: string[] }).matches;
      const preflight = (byId.preflight!.output as { verdicts: string[] }).verdicts[0];
      seen[cell.id] = {
        envoyFilter: applied.some((l) => /^envoyfilter\./.test(l)),
        // The real Envoy's line: the method and protocol the mesh spoke to it, and its answer.
        logged: /"(\S+) \S+ \S+ (HTTP\/[\d.]+)" - (\d+) - (\S+) www\.google\.com:443 DownstreamEnd$/
          .exec(line!)
          ?.slice(1),
        // istiod's config (the oracle) tunnels to the listener the cell chose.
        preflight: /via 192\.168\.56\.10:(\d+) (\S+) www\.google\.com:443 (\S+) (tls|plain)/
          .exec(preflight ?? '')
          ?.slice(1),
        probe: (byId['tunnelled-a']!.output as { exitCode: number }).exitCode,
        nothingElse: byId['proxy-saw-nothing-else']!.status,
        // The sidecar's cluster for the host: the gateway's, or its ISTIO_MUTUAL subset.
        toGateway: (byId['tunnel-ready']!.output as { sidecar: { routes: Record<string, string> } }).sidecar
          .routes['www.google.com'],
      };
    }
    const expected = (id: string) => {
      const tls = id.includes('proxyTransport=tls');
      const protocol = id.includes('HTTP/2') ? 'HTTP/2' : 'HTTP/1.1';
      const method = id.includes('POST') ? 'POST' : 'CONNECT';
      return {
        envoyFilter: id.includes('tcp-tunnel-filter'),
        logged: method === 'POST' ? ['POST', protocol, '404', 'NR'] : ['CONNECT', protocol, '200', 'DC'],
        preflight: [tls ? '3128' : '3129', method, protocol, tls ? 'tls' : 'plain'],
        probe: method === 'POST' || id.includes('tunnelRefused') ? 35 : 0,
        nothingElse: 'passed',
        toGateway: `outbound|443|${id.includes('ISTIO_MUTUAL') ? 'mtls-0' : ''}|istio-egressgateway.istio-system.svc.cluster.local`,
      };
    };
    expect(seen).toEqual(Object.fromEntries(ids.map((id) => [id, expected(id)])));

    // The report's grid: the axes every cell sets, the POST cell in a column of its own.
    const dir = await mkdtemp(path.join(os.tmpdir(), 'tunnels-report-'));
    await writeReport(dir, await collectRunReport(handle, { namespace: 'default' }));
    const html = await readFile(path.join(dir, 'report.html'), 'utf8');
    const grid = /<table class="grid">(.*?)<\/table>/s.exec(html)?.[1] ?? '';
    const rows = [...grid.matchAll(/<tr><th>([^<]*)<\/th>(.*?)<\/tr>/g)].map((m) => [
      m[1],
      [...m[2]!.matchAll(/>([\w./]+|—)<\/(?:th|span|td)>/g)].map((c) => c[1]),
    ]);
    expect(rows[0]).toEqual([
      'tunnel, proxyTransport, proxyProtocol, gatewayTls \\ tunnelMethod',
      ['CONNECT', 'POST'],
    ]);
    expect(rows).toHaveLength(14);
    expect(rows.filter(([, cells]) => cells!.includes('—'))).toHaveLength(12);
    expect(rows).toContainEqual(['native-tunnel, tls, HTTP/1.1, DISABLE', ['passed', 'passed']]);
    expect(rows).toContainEqual(['native-tunnel, tls, HTTP/1.1, ISTIO_MUTUAL', ['passed', '—']]);
    expect(rows).toContainEqual(['native-tunnel, plain, HTTP/2, ISTIO_MUTUAL', ['passed', '—']]);
    expect(rows).toContainEqual(['tcp-tunnel-filter, tls, HTTP/1.1, ISTIO_MUTUAL', ['passed', '—']]);
  }, 300_000);

  it("passes playbooks/proxy-auth.yaml: the run's credential gets through the proxy's credential listener, none gets 407, and no history holds it", async () => {
    const { result, cells } = await matrixRun('proxy-auth');
    const ids = [
      'proxyAuth=basic,tunnel=tcp-tunnel-filter,proxyTransport=tls',
      'proxyAuth=missing,tunnel=tcp-tunnel-filter,proxyTransport=tls,tunnelRefused=true,proxyStatus=407',
    ];
    expect(result.cells!.map((c) => [c.id, c.status])).toEqual(ids.map((id) => [id, 'passed']));
    const seen: Record<string, unknown> = {};
    for (const { cell, byId } of cells) {
      const [line] = (byId['proxy-saw-a']!.output as { matches: string[] }).matches;
      const preflight = (byId.preflight!.output as { verdicts: string[] }).verdicts[0];
      const folder = runDir(lab.stateRoot, cell.workflowId);
      // The EnvoyFilter as applied, in the run's folder (mode 0600): the one file that holds the header.
      const applied = path.join(folder, 'manifests', 'tls-passthrough', 'tcp-tunnel-filter.yaml');
      const header = /Basic [A-Za-z0-9+/=]+/.exec(await readFile(applied, 'utf8'))?.[0];
      seen[cell.id] = {
        // The real Envoy's line for the first host: the CONNECT and its answer.
        logged: /"(\S+) \S+ \S+ HTTP\/1\.1" - (\d+) - \S+ www\.google\.com:443 DownstreamEnd$/
          .exec(line!)
          ?.slice(1),
        // istiod's config (the oracle) tunnels to the credential listener, with or without the header.
        preflight:
          /via 192\.168\.56\.10:(\d+) CONNECT www\.google\.com:443 HTTP\/1\.1 tls( Proxy-Authorization sha256:[0-9a-f]{12})?/
            .exec(preflight ?? '')
            ?.slice(1)
            .map((part) => (part ? part.trim().split(' ')[0] : 'none')),
        probe: (byId['tunnelled-a']!.output as { exitCode: number }).exitCode,
        header: header ? 'sent' : 'none',
        appliedMode: ((await stat(applied)).mode & 0o777).toString(8),
        // The finally step took the credential away again.
        credentialGone: byId['credential-gone']!.status,
      };
      if (header) {
        const history = await exportedHistory(cell.workflowId);
        expect(history).toContain('proxy.credential');
        expect(history).not.toContain(header.slice('Basic '.length));
        expect(JSON.stringify(result)).not.toContain(header.slice('Basic '.length));
      }
    }
    // With the credential the proxy serves; without it, it answers 407 and the probes fail.
    const expected = (withIt: boolean) => ({
      logged: ['CONNECT', withIt ? '200' : '407'],
      preflight: ['3130', withIt ? 'Proxy-Authorization' : 'none'],
      probe: withIt ? 0 : 35,
      header: withIt ? 'sent' : 'none',
      appliedMode: '600',
      credentialGone: 'passed',
    });
    expect(seen).toEqual({ [ids[0]!]: expected(true), [ids[1]!]: expected(false) });
  }, 180_000);

  it('passes playbooks/sidecar-tunnels.yaml: the sidecar tunnels by itself, every way, no gateway on the path', async () => {
    const { result, cells } = await matrixRun('sidecar-tunnels');
    const ids = gridIds(['native-tunnel-sidecar', 'tcp-tunnel-filter-sidecar'], ',proxyAuth=none');
    // The sidecar's EnvoyFilter tunnel with the run's credential, to the proxy's credential listener.
    ids.push('tunnel=tcp-tunnel-filter-sidecar,proxyTransport=tls,proxyProtocol=HTTP/1.1,proxyAuth=basic');
    expect(result.cells!.map((c) => [c.id, c.status])).toEqual(ids.map((id) => [id, 'passed']));
    const seen: Record<string, unknown> = {};
    for (const { cell, byId } of cells) {
      const applied = (byId.tunnel!.output as { lines: string[] }).lines;
      const [line] = (byId['proxy-saw-b']!.output as { matches: string[] }).matches;
      seen[cell.id] = {
        // Applied: the sidecar's own routing and tunnel, nothing for a gateway.
        kinds: [...new Set(applied.map((l) => l.split('/')[0]))].sort(),
        // The sidecar itself holds the tunnels (istioctl proxy-config of the client pod).
        sidecarTunnels: (byId['tunnel-ready']!.output as { sidecar: { tunnels: string[] } }).sidecar.tunnels,
        logged: /"(\S+) \S+ \S+ (HTTP\/[\d.]+)" - (\d+) - \S+ www\.wikipedia\.org:443 DownstreamEnd$/
          .exec(line!)
          ?.slice(1),
        nothingElse: byId['proxy-saw-nothing-else']!.status,
        // istiod's config (the oracle): the sidecar tunnels to that port, with the credential or without.
        preflight: /via 192\.168\.56\.10:(\d+) .*?( Proxy-Authorization sha256:[0-9a-f]{12})?$/
          .exec((byId.preflight!.output as { verdicts: string[] }).verdicts[0] ?? '')
          ?.slice(1)
          .map((part) => (part ? part.trim().split(' ')[0] : 'none')),
      };
    }
    const expected = (id: string) => ({
      kinds: [
        'destinationrule.networking.istio.io',
        ...(id.includes('tcp-tunnel-filter') ? ['envoyfilter.networking.istio.io'] : []),
        'serviceentry.networking.istio.io',
        'virtualservice.networking.istio.io',
      ].filter(
        (k) => k !== 'destinationrule.networking.istio.io' || !/filter-sidecar,proxyTransport=plain/.test(id),
      ),
      sidecarTunnels: ['www.google.com:443', 'www.wikipedia.org:443'],
      logged: ['CONNECT', id.includes('HTTP/2') ? 'HTTP/2' : 'HTTP/1.1', '200'],
      nothingElse: 'passed',
      preflight: id.includes('proxyAuth=basic')
        ? ['3130', 'Proxy-Authorization']
        : [id.includes('proxyTransport=tls') ? '3128' : '3129', 'none'],
    });
    expect(seen).toEqual(Object.fromEntries(ids.map((id) => [id, expected(id)])));
  }, 300_000);

  it('fails the negative log check when a host that should stay outside the tunnel reaches the proxy', async () => {
    // The "outside" host is one the tunnel carries: only the proxy's log can tell.
    const file = await variant('tls-passthrough', (steps) =>
      dropSteps(steps, 'preflight', 'outside-blocked'),
    );
    const result = await outcome(
      await start(lab, { ...onSim(file), vars: { teardown: 'destroy', hostOutside: 'www.wikipedia.org' } }),
    );
    expect(result.status).toBe('failed');
    expect(statuses(result)).toMatchObject({
      'tunnelled-b': 'passed',
      'proxy-saw-b': 'passed',
      'proxy-saw-nothing-else': 'failed',
      teardown: 'passed',
    });
    expect(result.error).toMatch(/step proxy-saw-nothing-else: ExpectationError: .*www\.wikipedia\.org/);
  }, 120_000);

  it('fails at the proxy log check when the tunnel resources are left out', async () => {
    const file = await variant('tls-passthrough', (steps) =>
      mapSteps(
        steps.filter((s) => s.id !== 'tunnel' && s.id !== 'tunnel-ready'),
        (s) =>
          s.id.startsWith('proxy-saw-')
            ? { ...s, retry: { attempts: 1 }, with: { ...s.with, within: '2s' } }
            : s.id.startsWith('tunnelled-')
              ? { ...s, retry: { attempts: 1 } }
              : s,
      ),
    );
    const result = await outcome(await start(lab, onSim(file)));
    expect(result.status).toBe('failed');
    // Without the tunnel the ServiceEntries still let the traffic out, directly: the probes pass, the log stays empty.
    expect(statuses(result)).toMatchObject({
      'tunnelled-a': 'passed',
      'proxy-saw-a': 'failed',
      'proxy-saw-b': 'failed',
      teardown: 'passed',
    });
    expect(result.error).toMatch(
      /step proxy-saw-a: ExpectationError: expected 1 line\(s\) matching .* found 0/,
    );
  }, 120_000);

  it('fails at the direct probes when the ServiceEntries are left out (REGISTRY_ONLY)', async () => {
    const file = await variant('tls-passthrough', (steps) =>
      steps
        .filter((s) => s.id !== 'service-entries' && s.id !== 'direct-ready')
        .map((s) =>
          s.id === 'direct'
            ? { ...s, parallel: s.parallel!.map((p) => ({ ...p, retry: { attempts: 2 } })) }
            : s,
        ),
    );
    const result = await outcome(await start(lab, onSim(file)));
    expect(result.status).toBe('failed');
    expect(statuses(result)).toMatchObject({
      blocked: 'passed',
      'direct-a': 'failed',
      'direct-b': 'failed',
      'proxy-untouched': 'pending',
      teardown: 'passed',
    });
    expect(result.error).toMatch(/step direct-a: ExpectationError: .*35/);
  }, 120_000);
});

describe('tls-passthrough variants that real Istio would not run as written', () => {
  const quick = (s: Step): Step => ({ ...s, retry: { attempts: 1 } });

  it('fails at the preflight when the tunnel is both the EnvoyFilter and the native API (Envoy NACKs)', async () => {
    const file = await variant('tls-passthrough', (steps) =>
      mapSteps(steps, (s) =>
        s.id === 'preflight'
          ? {
              ...s,
              with: {
                ...s.with,
                files: [...(s.with!.files as string[]), 'tls-passthrough/native-tunnel.yaml'],
              },
            }
          : s,
      ),
    );
    const result = await outcome(await start(lab, onSim(file)));
    expect(result.status).toBe('failed');
    expect(statuses(result)).toMatchObject({ preflight: 'failed', tunnel: 'pending', teardown: 'passed' });
    expect(result.error).toMatch(
      /step preflight: MeshCheckError: .*duplicate listener 0\.0\.0\.0_8443 found/s,
    );
  }, 120_000);

  it('fails at the tunnel check when the probes do not wait for the config to reach the proxies', async () => {
    const file = await variant('tls-passthrough', (steps) =>
      mapSteps(
        steps.filter((s) => s.id !== 'tunnel-ready'),
        (s) => (s.id.startsWith('proxy-saw-') ? { ...quick(s), with: { ...s.with, within: '3s' } } : s),
      ),
    );
    // istiod's push takes 10 s here, so that even on a busy machine the probes leave before it arrives.
    const slowPush = await simLabVariant(lab.stateRoot, 'slow-push', (def) => {
      def.sim.configDelay = '10s';
    });
    const result = await outcome(await start(lab, { ...onSim(file), lab: slowPush }));
    expect(result.status).toBe('failed');
    // The probes left before istiod's push reached the sidecar: they went direct and passed, unseen by the proxy.
    expect(statuses(result)).toMatchObject({
      'tunnelled-a': 'passed',
      'tunnelled-b': 'passed',
      'proxy-saw-a': 'failed',
    });
    expect(result.error).toMatch(
      /step proxy-saw-a: ExpectationError: expected 1 line\(s\) matching .* found 0/,
    );
  }, 120_000);

  it('without the preflight, fails while waiting for a tunnel whose EnvoyFilter selects no gateway', async () => {
    const file = await variant('tls-passthrough', tunnelForAnotherGateway);
    expectNoTunnelOnTheGateway(await outcome(await start(lab, onSim(file))));
  }, 120_000);
});

describe('mtls on the simulated lab', () => {
  it("passes mtls-tunnel: the client's own mTLS reaches the real nginx through the gateway's tunnel to the app's address", async () => {
    const handle = await start(lab, onSim('mtls-tunnel'));
    const result = await outcome(handle);
    expect(result.error).toBeUndefined();
    const byId = Object.fromEntries(result.steps.map((s) => [s.id, s]));
    // istiod's config (the oracle) tunnels the Service's TLS to the app machine's address.
    expect((byId.preflight!.output as { verdicts: string[] }).verdicts).toEqual([
      'external-app.default.svc.cluster.local:443 tunnel via 192.168.56.10:3128 CONNECT 192.168.56.30:443 HTTP/1.1 tls',
    ]);
    expect(byId['call-app']!.output).toMatchObject({ status: 200 });
    // nginx checked the client's certificate itself: the TLS went through both proxies unopened.
    expect((byId['app-saw-client']!.output as { matches: string[] }).matches).toEqual([
      expect.stringMatching(
        /ssl_client_s_dn="CN=curl-client" ssl_client_verify=SUCCESS sni="external-app\.default\.svc\.cluster\.local"/,
      ),
    ]);
    expect((byId['proxy-saw-app']!.output as { matches: string[] }).matches).toEqual([
      expect.stringMatching(
        /"CONNECT 192\.168\.56\.30:443 - HTTP\/1\.1" - 200 - \S+ 192\.168\.56\.30:443 DownstreamEnd$/,
      ),
    ]);
  }, 120_000);

  it('passes: the generated client certificate reaches the real nginx, which logs its name', async () => {
    // Halted, not destroyed: the lab's files stay for the look at their modes below.
    const handle = await start(lab, { ...onSim('mtls'), vars: { teardown: 'halt' } });
    const result = await outcome(handle);
    expect(result.error).toBeUndefined();
    expect(result.status).toBe('passed');
    const byId = Object.fromEntries(result.steps.map((s) => [s.id, s]));
    expect(byId['call-app']!.output).toMatchObject({ status: 200 });
    expect((byId['app-saw-client']!.output as { matches: string[] }).matches[0]).toMatch(/CN=curl-client/);
    expect(JSON.stringify(result)).not.toMatch(/PRIVATE KEY/);
    expect(await exportedHistory(handle.workflowId)).not.toMatch(/PRIVATE KEY/);
    // Every file of the run that holds a private key, as PEM or base64 (a Secret's data), is the owner's alone.
    const holders = await keyHolders(runDir(lab.stateRoot, handle.workflowId));
    expect(holders.map((h) => h.file)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/client\.key$/),
        expect.stringMatching(/cluster\.json$/),
      ]),
    );
    expect(holders.filter((h) => (h.mode & 0o077) !== 0)).toEqual([]);
  }, 120_000);
});

describe('plain HTTP on the simulated lab', () => {
  it("passes http-tunnels: plain HTTP reaches the real nginx's plain port directly, then through the gateway's tunnel, both ways", async () => {
    const { result, cells } = await matrixRun('http-tunnels');
    expect(result.status).toBe('passed');
    expect(cells.map(({ cell }) => [cell.id, cell.status])).toEqual([
      ['tunnel=tcp-tunnel-filter', 'passed'],
      ['tunnel=native-tunnel', 'passed'],
    ]);
    for (const { byId } of cells) {
      // istiod's config (the oracle) tunnels the Service's plain TCP to the app machine's plain-HTTP address.
      expect((byId.preflight!.output as { verdicts: string[] }).verdicts).toEqual([
        'external-app-http.default.svc.cluster.local:80 tunnel via 192.168.56.10:3128 CONNECT 192.168.56.30:80 HTTP/1.1 tls',
        expect.stringMatching(/^www\.example\.com:443 blocked from sidecar/),
      ]);
      expect(byId['direct-ready']!.output).toMatchObject({
        sidecar: {
          routes: {
            'external-app-http.default.svc.cluster.local:80': expect.stringMatching(
              /^outbound\|80\|\|external-app-http\./,
            ),
          },
        },
      });
      expect(byId['tunnel-ready']!.output).toMatchObject({
        gatewayTunnels: ['192.168.56.30:80'],
        sidecar: {
          routes: {
            'external-app-http.default.svc.cluster.local:80':
              expect.stringMatching(/\|istio-egressgateway\./),
          },
        },
      });
      expect(byId['call-app']!.output).toMatchObject({ status: 200 });
      // The real nginx's plain server answered: no TLS, so no SNI and no client certificate.
      expect((byId['app-saw-request']!.output as { matches: string[] }).matches).toEqual([
        expect.stringMatching(
          /"GET \/ HTTP\/1\.1" 200 \d+ ssl_client_s_dn="-" ssl_client_verify=- sni="-" "curl\//,
        ),
      ]);
      expect((byId['proxy-saw-app']!.output as { matches: string[] }).matches).toEqual([
        expect.stringMatching(
          /"CONNECT 192\.168\.56\.30:80 - HTTP\/1\.1" - 200 - \S+ 192\.168\.56\.30:80 DownstreamEnd$/,
        ),
      ]);
    }
  }, 240_000);

  it('fails http-tunnel at the proxy log check when the sidecar keeps sending the plain HTTP straight to the app', async () => {
    // The gateway tunnels, but nothing routes the Service's port to it: the request still reaches nginx.
    const file = await variant('http-tunnel', (steps) =>
      mapSteps(steps, (s) =>
        s.id === 'tunnel'
          ? { ...s, with: { ...s.with, files: ['http/tcp-tunnel-filter.yaml'] } }
          : s.id === 'tunnel-ready'
            ? { ...s, with: { gateway: (s.with as { gateway: unknown }).gateway } }
            : s.id === 'proxy-saw-app'
              ? { ...s, retry: { attempts: 1 }, with: { ...s.with, within: '3s' } }
              : s,
      ),
    );
    const result = await outcome(await start(lab, onSim(file)));
    expect(result.status).toBe('failed');
    expect(statuses(result)).toMatchObject({
      'call-app': 'passed',
      'app-saw-request': 'passed',
      'proxy-saw-app': 'failed',
      teardown: 'passed',
    });
    expect(result.error).toMatch(
      /step proxy-saw-app: ExpectationError: expected 1 line\(s\) matching .* found 0/,
    );
  }, 120_000);
});
