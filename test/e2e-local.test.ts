/**
 * The proof of concept's two scenarios, and plain HTTP through the tunnel, end to end on the local lab (labs/local.yaml), through the real
 * dev server: the real API server, kubectl, controller-manager, scheduler and istiod, KWOK nodes, the
 * simulated machines with the real Envoy and nginx. The variants that must fail fail for the reasons the
 * real components give: the API server refuses an object with Istio's own rule, and an EnvoyFilter that
 * selects no gateway leaves istiod's config for the gateway without the tunnel.
 */
import type { ScenarioInput, ScenarioResult } from '../workflows/types.js';
import { outcome, start, type TestLab, useWorker } from './support/temporal.js';
import { expectNoTunnelOnTheGateway, tunnelForAnotherGateway, variant } from './support/variants.js';

let lab: TestLab;
useWorker('e2e-local', (created) => (lab = created));

const onLocal = (playbook: string, vars: Record<string, string> = {}): ScenarioInput => ({
  playbook,
  lab: 'local',
  vars: { teardown: 'destroy', ...vars },
});
const statuses = (result: ScenarioResult) => Object.fromEntries(result.steps.map((s) => [s.id, s.status]));

describe('the local lab: a real control plane', () => {
  it("tls-passthrough passes: blocked by istiod's config, direct, then tunnelled through the real Envoy", async () => {
    const result = await outcome(await start(lab, onLocal('tls-passthrough')));
    expect(result.error).toBeUndefined();
    expect(result.status).toBe('passed');
    const byId = Object.fromEntries(result.steps.map((s) => [s.id, s]));
    expect(byId.istio!.output).toMatchObject({
      lines: expect.arrayContaining(['✔ Egress gateways installed 🛫']),
    });
    expect(byId.blocked!.output).toMatchObject({ status: 0, exitCode: 35 });
    expect(byId['direct-a']!.output).toMatchObject({ status: 200 });
    expect(byId['tunnel-ready']!.output).toMatchObject({
      gatewayTunnels: ['www.google.com:443', 'www.wikipedia.org:443'],
      pushStatus: 'clean',
    });
    expect((byId['proxy-saw-a']!.output as { matches: string[] }).matches).toEqual([
      expect.stringMatching(
        /"CONNECT 127\.\d+\.\d+\.\d+:443 - HTTP\/1\.1" - 200 - \S+ www\.google\.com:443 DownstreamEnd$/,
      ),
    ]);
  }, 300_000);

  it('mtls passes: the client certificate from the real ConfigMap and Secret reaches the real nginx', async () => {
    const result = await outcome(await start(lab, onLocal('mtls')));
    expect(result.error).toBeUndefined();
    expect(result.status).toBe('passed');
    const byId = Object.fromEntries(result.steps.map((s) => [s.id, s]));
    expect(byId['call-app']!.output).toMatchObject({ status: 200 });
    expect((byId['app-saw-client']!.output as { matches: string[] }).matches[0]).toMatch(/CN=curl-client/);
  }, 300_000);

  it("http-tunnel passes with Istio's native tunnel: istiod's TCP server on the gateway's plain port tunnels to the app", async () => {
    const result = await outcome(await start(lab, onLocal('http-tunnel', { tunnel: 'native-tunnel' })));
    expect(result.error).toBeUndefined();
    const byId = Object.fromEntries(result.steps.map((s) => [s.id, s]));
    expect(byId.direct!.output).toMatchObject({ status: 200 });
    // The real istiod's config for the gateway carries the tunnel, and the sidecar's for the Service's port
    // routes it there (read from its listener on the Service's cluster IP).
    expect(byId['tunnel-ready']!.output).toMatchObject({
      gatewayTunnels: ['192.168.56.30:80'],
      sidecar: {
        routes: {
          'external-app-http.default.svc.cluster.local:80':
            'outbound|80||istio-egressgateway.istio-system.svc.cluster.local',
        },
      },
      pushStatus: 'clean',
    });
    expect(byId['call-app']!.output).toMatchObject({ status: 200 });
    expect((byId['app-saw-request']!.output as { matches: string[] }).matches[0]).toMatch(/ sni="-" /);
  }, 300_000);

  it("fails where the API server refuses a ServiceEntry by Istio's own rule (a wildcard host)", async () => {
    const file = await variant('tls-passthrough', (steps) =>
      steps.map((s) => (s.id === 'service-entries' ? { ...s, retry: { attempts: 1 } } : s)),
    );
    const result = await outcome(await start(lab, onLocal(file, { hostB: '*' })));
    expect(result.status).toBe('failed');
    expect(statuses(result)).toMatchObject({
      blocked: 'passed',
      'service-entries': 'failed',
      teardown: 'passed',
    });
    expect(result.error).toMatch(/step service-entries: .*hostname cannot be wildcard/s);
  }, 300_000);

  it("fails while waiting for a tunnel whose EnvoyFilter selects no gateway: istiod's config has none", async () => {
    const file = await variant('tls-passthrough', tunnelForAnotherGateway);
    expectNoTunnelOnTheGateway(await outcome(await start(lab, onLocal(file))));
  }, 300_000);
});
