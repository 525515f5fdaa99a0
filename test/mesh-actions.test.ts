/**
 * mesh.check (the preflight) and mesh.wait (the config has reached the proxies) on the simulated lab,
 * whose Istio config takes `sim.configDelay` to reach the proxies, as istiod's pushes do.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { stringify } from 'yaml';
import { istioInstallAction } from '../activities/istio-install.js';
import { kubeLabelAction } from '../activities/kube-label.js';
import { manifestApplyAction } from '../activities/manifest-apply.js';
import { manifestPruneAction } from '../activities/manifest-prune.js';
import { meshCheckAction, type MeshCheckOutput } from '../activities/mesh-check.js';
import {
  meshWaitAction,
  plainRoutes,
  sniRoutes,
  tunnelHostnames,
  type MeshWaitOutput,
} from '../activities/mesh-wait.js';
import { probeCurlAction } from '../activities/probe-curl.js';
import { projectRoot } from '../src/config.js';
import { ensureOracle, parseProbe } from '../src/mesh/oracle.js';
import type { SimLab } from './support/sim-lab.js';
import { pocVirtualService } from './support/mesh-corpus.js';
import { clusterLab } from './support/sim-cluster.js';

const TUNNEL = [
  'tls-passthrough/service-entries.yaml',
  'tls-passthrough/egress-routing.yaml',
  'tls-passthrough/tcp-tunnel-filter.yaml',
];
const EXPECT = { 'www.google.com': 'tunnel', 'www.wikipedia.org': 'tunnel', 'www.example.com': 'blocked' };

let lab: SimLab;

beforeAll(async () => {
  await ensureOracle(projectRoot());
  // Long enough that the probe right after an apply (four stand-in processes here) still meets the old config.
  lab = await clusterLab({ configDelay: '3s' });
}, 1_800_000);
afterAll(async () => {
  await lab?.close();
});

const failure = (action: Parameters<SimLab['run']>[0], input: Record<string, unknown>): Promise<Error> =>
  lab.run(action, input).then(
    (outcome) => new Error(`expected a failure, got ${JSON.stringify(outcome.output)}`),
    (e: unknown) => e as Error,
  );

describe('mesh.check', () => {
  it.each(['oracle', 'model'])(
    'with the %s: passes for the playbook tunnel, with the evidence per host',
    async (engine) => {
      const out = (await lab.run(meshCheckAction, { files: TUNNEL, expect: EXPECT, engine }))
        .output as MeshCheckOutput;
      expect(out.engine).toBe(engine === 'oracle' ? 'istio-oracle' : 'sim-model');
      expect(out.verdicts).toEqual([
        'www.google.com:443 tunnel via 192.168.56.10:3128 CONNECT www.google.com:443 HTTP/1.1 tls',
        'www.wikipedia.org:443 tunnel via 192.168.56.10:3128 CONNECT www.wikipedia.org:443 HTTP/1.1 tls',
        expect.stringMatching(/^www\.example\.com:443 blocked from sidecar/),
      ]);
      expect(out).toMatchObject({ conflicts: [], nacks: [], rejected: [] });
      expect(out.paths['www.google.com:443']!.join('\n')).toMatch(/gateway/);
    },
  );

  it('uses the oracle on the simulated lab once it is built', async () => {
    const out = (await lab.run(meshCheckAction, { files: TUNNEL, expect: EXPECT })).output as MeshCheckOutput;
    expect(out.engine).toBe('istio-oracle');
    expect(out.source).toMatch(/^istio\.io\/istio v0\.0\.0-\d{14}-[0-9a-f]{12}, go-control-plane v1\./);
  });

  it.each(['oracle', 'model'])(
    'with the %s: fails at once when a host would not go where expected',
    async (engine) => {
      const err = await failure(meshCheckAction, {
        files: TUNNEL.slice(0, 1),
        expect: { 'www.google.com': 'tunnel' },
        engine,
      });
      expect(err).toMatchObject({ type: 'MeshCheckError', nonRetryable: true });
      expect(err.message).toMatch(
        /www\.google\.com: expected tunnel, www\.google\.com:443 direct from sidecar/,
      );
    },
  );

  it.each(['oracle', 'model'])(
    'with the %s: judges plain HTTP by URL, as TCP on the Service port, without SNI',
    async (engine) => {
      const app = 'http://external-app-http.default.svc.cluster.local';
      const files = ['http/external-app.yaml', 'http/egress-routing.yaml', 'http/native-tunnel.yaml'];
      const out = (
        await lab.run(meshCheckAction, {
          files,
          expect: { [app]: 'tunnel', 'www.google.com': 'blocked' },
          engine,
        })
      ).output as MeshCheckOutput;
      expect(out.verdicts).toEqual([
        'external-app-http.default.svc.cluster.local:80 tunnel via 192.168.56.10:3128 CONNECT 192.168.56.30:80 HTTP/1.1 tls',
        expect.stringMatching(/^www\.google\.com:443 blocked from sidecar/),
      ]);
      // Routed to the gateway's plain port with nothing listening there, it fails; the error names the URL.
      const err = await failure(meshCheckAction, {
        files: files.slice(0, 2),
        expect: { [app]: 'tunnel' },
        engine,
      });
      expect(err.message).toMatch(
        /http:\/\/external-app-http\.default\.svc\.cluster\.local: expected tunnel, external-app-http\.default\.svc\.cluster\.local:80 fail/,
      );
    },
  );

  it('names a probe by host or by URL, and refuses anything else', () => {
    expect(parseProbe('www.google.com')).toEqual({ host: 'www.google.com' });
    expect(parseProbe('http://app.default.svc.cluster.local')).toEqual({
      host: 'app.default.svc.cluster.local',
      plain: true,
    });
    expect(parseProbe('https://www.google.com:8443')).toEqual({ host: 'www.google.com', port: 8443 });
    for (const bad of ['ftp://x', 'http://x/path', 'www.google.com:443', 'two words'])
      expect(parseProbe(bad)).toBeUndefined();
    expect(
      meshCheckAction.input.safeParse({ files: ['x.yaml'], expect: { 'http://x/path': 'tunnel' } }).error
        ?.issues[0],
    ).toMatchObject({
      path: ['expect', 'http://x/path'],
      message: 'must be a host, or an http:// or https:// URL',
    });
  });

  it.each(['oracle', 'model'])('with the %s: fails on a conflict and on a NACK', async (engine) => {
    const err = await failure(meshCheckAction, {
      files: [...TUNNEL, 'tls-passthrough/native-tunnel.yaml'],
      expect: { 'www.google.com': 'fail' },
      engine,
    });
    expect(err.message).toMatch(/Envoy would NACK: gateway: LDS: duplicate listener 0\.0\.0\.0_8443 found/);
  });
});

describe('mesh.wait', () => {
  beforeAll(async () => {
    await lab.run(istioInstallAction, {
      profile: 'demo',
      set: { 'meshConfig.outboundTrafficPolicy.mode': 'REGISTRY_ONLY' },
    });
    await lab.run(kubeLabelAction, { name: 'default', labels: { 'istio-injection': 'enabled' } });
    await lab.run(manifestApplyAction, { files: ['common/curl.yaml'], waitFor: [{ name: 'curl' }] });
  }, 60_000);

  const wait = {
    gateway: { tunnels: ['www.google.com:443'] },
    sidecar: { toGateway: ['www.google.com'] },
  };

  it('waits until istiod has pushed the tunnel to the gateway and the route to the sidecar', async () => {
    await lab.run(manifestApplyAction, { files: TUNNEL, values: { hosts: ['www.google.com'] } });
    // Right after applying, the sidecar still has the old config: not even the ServiceEntry, so REGISTRY_ONLY
    // refuses the host.
    const early = await lab.run(probeCurlAction, { url: 'https://www.google.com', expect: { fails: true } });
    expect(early.output).toMatchObject({ exitCode: 35 });
    const out = (await lab.run(meshWaitAction, { ...wait, interval: '200ms' })).output as MeshWaitOutput;
    expect(out).toMatchObject({
      gatewayTunnels: ['www.google.com:443'],
      sidecar: {
        pod: expect.stringMatching(/^curl-/),
        routes: { 'www.google.com': 'outbound|443||istio-egressgateway.istio-system.svc.cluster.local' },
      },
      pushStatus: 'clean',
    });
    expect(out.waitedMs).toBeGreaterThan(0);
    // Now the probe goes through the tunnel: the proxy logs it.
    await lab.run(probeCurlAction, { url: 'https://www.google.com' });
    const log = await readFile(lab.def.machines['external-proxy']!.files.accessLog!, 'utf8');
    expect(log).toMatch(/"CONNECT \S+:443 - HTTP\/1\.1" - 200 - DC www\.google\.com:443 DownstreamEnd$/m);
  });

  it('gives up after `within`, naming what is missing', async () => {
    const err = await failure(meshWaitAction, {
      gateway: { tunnels: ['www.nowhere.example:443'] },
      within: '1s',
      interval: '300ms',
    });
    expect(err).toMatchObject({ type: 'ExpectationError' });
    expect(err.message).toMatch(
      /after 1s the proxies still lack the config: the gateway has no tunnel to www\.nowhere\.example:443/,
    );
  });

  it('waits until the sidecar routes a host directly after its ServiceEntry, naming what is missing', async () => {
    await lab.run(manifestApplyAction, {
      files: ['tls-passthrough/service-entries.yaml'],
      values: { hosts: ['www.wikipedia.org'] },
    });
    const direct = { sidecar: { direct: ['www.wikipedia.org'] }, interval: '200ms' };
    const out = (await lab.run(meshWaitAction, direct)).output as MeshWaitOutput;
    expect(out.sidecar).toMatchObject({ routes: { 'www.wikipedia.org': 'outbound|443||www.wikipedia.org' } });
    await lab.run(probeCurlAction, { url: 'https://www.wikipedia.org' });

    // The tunnelled host goes to the gateway, not directly.
    const err = await failure(meshWaitAction, {
      sidecar: { direct: ['www.google.com'] },
      within: '1s',
      interval: '300ms',
    });
    expect(err.message).toMatch(
      /the sidecar of curl-\S+ sends www\.google\.com to outbound\|443\|\|istio-egressgateway\.istio-system\.svc\.cluster\.local, not directly/,
    );
  });

  it("fails on a conflict in istiod's push status: the PoC's one VirtualService for both hosts", async () => {
    await lab.run(manifestApplyAction, {
      files: ['tls-passthrough/service-entries.yaml'],
      values: { hosts: ['www.google.com', 'www.wikipedia.org'] },
    });
    const file = path.join(lab.stateRoot, 'poc-routing.yaml');
    await writeFile(file, stringify(pocVirtualService('egress-www.google.com')));
    await lab.runtime.kubectl(['apply', '-f', file]);
    const err = await failure(meshWaitAction, {
      sidecar: { toGateway: ['www.google.com', 'www.wikipedia.org'] },
      within: '10s',
      interval: '300ms',
    });
    expect(err).toMatchObject({ type: 'MeshCheckError', nonRetryable: true });
    expect(err.message).toBe(
      "istiod's push status reports: pilot_conflict_outbound_listener_tcp_over_current_tcp 0.0.0.0_443: " +
        'Listener=0.0.0.0_443 Accepted=TCP Rejected=TCP (www.wikipedia.org)',
    );
  });

  it('waits until the sidecar tunnels a host itself, with no egress gateway, naming what is missing', async () => {
    // A clean slate: no gateway routing, and not the PoC's VirtualService (older than any other, so the
    // sidecars would keep using it for both hosts).
    await lab.run(manifestPruneAction, { runs: 'all' });
    await lab.runtime.kubectl(['delete', 'virtualservice', 'egress-www.google.com', '--ignore-not-found']);
    await lab.run(manifestApplyAction, {
      files: ['tls-passthrough/service-entries.yaml', 'tls-passthrough/native-tunnel-sidecar.yaml'],
      values: { hosts: ['www.wikipedia.org'] },
    });
    const out = (
      await lab.run(meshWaitAction, { sidecar: { tunnels: ['www.wikipedia.org:443'] }, interval: '200ms' })
    ).output as MeshWaitOutput;
    expect(out.sidecar).toMatchObject({ tunnels: ['www.wikipedia.org:443'] });
    expect(meshWaitAction.evidence!(out, {} as never)).toContainEqual(
      expect.stringMatching(/^sidecar of curl-\S+ tunnels: www\.wikipedia\.org:443$/),
    );
    await lab.run(probeCurlAction, { url: 'https://www.wikipedia.org' });
    const log = await readFile(lab.def.machines['external-proxy']!.files.accessLog!, 'utf8');
    expect(log).toMatch(/"CONNECT \S+:443 - HTTP\/1\.1" - 200 - DC www\.wikipedia\.org:443 DownstreamEnd$/m);

    const err = await failure(meshWaitAction, {
      sidecar: { tunnels: ['www.google.com:443'] },
      within: '1s',
      interval: '300ms',
    });
    expect(err.message).toMatch(/the sidecar of curl-\S+ has no tunnel to www\.google\.com:443/);
  });
});

describe('reading istioctl proxy-config listeners -o json', () => {
  const dump = [
    {
      name: '0.0.0.0_8443',
      filterChains: [
        {
          filterChainMatch: { serverNames: ['www.google.com'] },
          filters: [
            {
              name: 'envoy.filters.network.tcp_proxy',
              typedConfig: {
                '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
                cluster: 'external-proxy',
                tunnelingConfig: { hostname: 'www.google.com:443' },
              },
            },
          ],
        },
      ],
    },
  ];

  it('finds the tunnels and the SNI routes in Envoy JSON', () => {
    expect(tunnelHostnames(dump)).toEqual(['www.google.com:443']);
    expect(sniRoutes(dump)).toEqual({ 'www.google.com': 'external-proxy' });
    expect(tunnelHostnames([])).toEqual([]);
  });

  it('finds where plain TCP to a cluster IP goes: chains without SNI, on listeners of a service address', () => {
    const chain = (cluster: string, serverNames?: string[]) => ({
      ...(serverNames ? { filterChainMatch: { serverNames } } : {}),
      filters: [{ name: 'envoy.filters.network.tcp_proxy', typedConfig: { cluster } }],
    });
    const listeners = [
      {
        name: '10.96.0.42_80',
        address: { socketAddress: { address: '10.96.0.42', portValue: 80 } },
        filterChains: [chain('outbound|80||istio-egressgateway.istio-system.svc.cluster.local')],
      },
      // A wildcard listener is no service's own, and an SNI chain carries no plain text.
      {
        name: '0.0.0.0_80',
        address: { socketAddress: { address: '0.0.0.0', portValue: 80 } },
        filterChains: [chain('PassthroughCluster')],
      },
      {
        name: '10.96.0.43_443',
        address: { socket_address: { address: '10.96.0.43', port_value: 443 } },
        filter_chains: [chain('outbound|443||a', ['a'])],
      },
    ];
    expect(plainRoutes(listeners)).toEqual({
      '10.96.0.42:80': 'outbound|80||istio-egressgateway.istio-system.svc.cluster.local',
    });
  });
});
