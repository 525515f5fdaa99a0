/**
 * The mesh model against manifests rendered from manifests/ for the sim lab, one rule per test, each
 * with the case that must fail next to the one that must pass.
 */
import path from 'node:path';
import { loadLab } from '../src/lab/definition.js';
import {
  defaultValues,
  labValues,
  manifestsDir,
  mergeValues,
  renderManifestFile,
} from '../src/lab/render.js';
import { ISTIO_COMPONENTS } from '../sim/lib/kube-cluster.js';
import { modelLab } from '../sim/mesh/answer.js';
import {
  CONFLICT_TCP_OVER_TCP,
  pushStatusOf,
  simulateRequest,
  type MeshInput,
  type MeshObject,
} from '../sim/mesh/model.js';
import { pocVirtualService } from './support/mesh-corpus.js';
import { root } from './support/temporal.js';

const dir = manifestsDir(root);
const LAB = modelLab();
const NOW = new Date('2022-01-28T13:23:03.527Z');
const LOG_LINE =
  /^\[2022-01-28T13:23:03\.527Z\] 192\.168\.56\.20:47191 "CONNECT (\d+\.\d+\.\d+\.\d+):443 - HTTP\/1\.1" - 200 - (-|DC) ([\w.-]+):443 (DownstreamTunnelSuccessfullyEstablished|DownstreamEnd)$/;

let context: { lab: Record<string, unknown>; values: Record<string, unknown> };

beforeAll(async () => {
  const def = await loadLab('sim', { projectRoot: root, stateDir: '/tmp/tunnel-lab-mesh-test/lab' });
  context = { lab: labValues(def), values: await defaultValues(dir) };
});

async function manifests(files: string[], values: Record<string, unknown> = {}): Promise<MeshObject[]> {
  const out: MeshObject[] = [];
  for (const file of files) {
    const { documents } = await renderManifestFile(path.join(dir, file), {
      lab: context.lab,
      values: mergeValues(context.values, values),
    });
    out.push(...(documents as MeshObject[]));
  }
  // The API server gives every Service a ClusterIP.
  for (const [i, o] of out.entries()) {
    if (o.kind === 'Service') (o.spec as Record<string, unknown>).clusterIP ??= `10.96.1.${i + 2}`;
  }
  return out;
}

/** The Deployments and Services istioctl's demo profile creates, as the stand-in stores them. */
function istioObjects(): MeshObject[] {
  return Object.entries(ISTIO_COMPONENTS).flatMap(([name, c]) => [
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name, namespace: 'istio-system', labels: c.labels },
      spec: { template: { metadata: { labels: c.labels } } },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, namespace: 'istio-system' },
      spec: {
        clusterIP: `10.96.9.${name.length}`,
        selector: c.labels,
        ports: c.ports.map((p) => ({ ...p, protocol: 'TCP' })),
      },
    },
  ]);
}

function probe(resources: MeshObject[], url: string, overrides: Partial<MeshInput> = {}) {
  return simulateRequest({
    resources: [...istioObjects(), ...resources],
    istio: { outboundTrafficPolicy: 'REGISTRY_ONLY' },
    lab: LAB,
    source: { pod: 'curl-698cfc4445-5f4w2', namespace: 'default', sidecar: true },
    request: { url, insecure: false },
    now: NOW,
    sourcePort: 47191,
    ...overrides,
  });
}

/** The parts of the rendered EnvoyFilter and DestinationRule that tests break on purpose. */
interface TunnelFilter {
  spec: {
    configPatches: {
      patch: {
        value: {
          transport_socket?: unknown;
          filter_chains: { filters: { typed_config: { tunneling_config: { hostname: string } } }[] }[];
        };
      };
    }[];
  };
}
interface ProxyRule {
  spec: { trafficPolicy?: unknown; subsets: { trafficPolicy: { tls?: unknown } }[] };
}
const find = <T>(resources: MeshObject[], kind: string, name?: string) =>
  resources.find((r) => r.kind === kind && (!name || r.metadata.name === name)) as unknown as T;

const TLS_PASSTHROUGH = ['tls-passthrough/service-entries.yaml', 'tls-passthrough/egress-routing.yaml'];

describe('mesh model', () => {
  it('sends traffic directly when Istio is not installed or the pod has no sidecar', () => {
    for (const overrides of [
      { istio: undefined },
      { source: { pod: 'p', namespace: 'default', sidecar: false } },
    ] as Partial<MeshInput>[]) {
      const out = probe([], 'https://www.google.com', overrides);
      expect(out).toMatchObject({ exitCode: 0, httpCode: 200, proxyLogLines: [], remoteIp: '216.58.209.4' });
    }
  });

  it('resets a host outside the registry under REGISTRY_ONLY and lets it through under ALLOW_ANY', () => {
    expect(probe([], 'https://www.google.com')).toMatchObject({
      exitCode: 35,
      httpCode: 0,
      error: 'Recv failure: Connection reset by peer',
      proxyLogLines: [],
    });
    expect(
      probe([], 'https://www.google.com', { istio: { outboundTrafficPolicy: 'ALLOW_ANY' } }),
    ).toMatchObject({
      exitCode: 0,
      httpCode: 200,
    });
    // Plain HTTP meets the sidecar's BlackHole route instead, which answers.
    expect(probe([], 'http://www.google.com')).toMatchObject({ exitCode: 0, httpCode: 502 });
  });

  it('lets a ServiceEntry host out directly, without the proxy', async () => {
    const out = probe(await manifests(['tls-passthrough/service-entries.yaml']), 'https://www.wikipedia.org');
    expect(out).toMatchObject({ exitCode: 0, httpCode: 200, proxyLogLines: [] });
    expect(out.trace.join('\n')).toMatch(/ServiceEntry www\.wikipedia\.org/);
  });

  it('fails when the VirtualService sends to the egress gateway but no listener there knows the SNI', async () => {
    const out = probe(await manifests(TLS_PASSTHROUGH), 'https://www.google.com');
    expect(out).toMatchObject({ exitCode: 35, httpCode: 0, proxyLogLines: [] });
    expect(out.trace.join('\n')).toMatch(/gateway: no listener on 8443/);
  });

  it('tunnels through the proxy with the EnvoyFilter listener, logging the PoC line at open and at close', async () => {
    const resources = await manifests([...TLS_PASSTHROUGH, 'tls-passthrough/tcp-tunnel-filter.yaml']);
    const google = probe(resources, 'https://www.google.com');
    expect(google).toMatchObject({ exitCode: 0, httpCode: 200 });
    expect(google.proxyLogLines).toEqual([
      '[2022-01-28T13:23:03.527Z] 192.168.56.20:47191 "CONNECT 216.58.209.4:443 - HTTP/1.1" - 200 - - www.google.com:443 DownstreamTunnelSuccessfullyEstablished',
      '[2022-01-28T13:23:03.527Z] 192.168.56.20:47191 "CONNECT 216.58.209.4:443 - HTTP/1.1" - 200 - DC www.google.com:443 DownstreamEnd',
    ]);
    const wikipedia = probe(resources, 'https://www.wikipedia.org');
    expect(wikipedia.proxyLogLines).toHaveLength(2);
    for (const line of wikipedia.proxyLogLines) expect(line).toMatch(LOG_LINE);
    expect(wikipedia.proxyLogLines[0]).toContain('CONNECT 91.198.174.192:443');
  });

  it('fails for a host the filter has no chain for, even when it is routed to the gateway', async () => {
    const resources = [
      ...(await manifests(TLS_PASSTHROUGH)),
      ...(await manifests(['tls-passthrough/tcp-tunnel-filter.yaml'], { hosts: ['www.google.com'] })),
    ];
    expect(probe(resources, 'https://www.google.com')).toMatchObject({ exitCode: 0, httpCode: 200 });
    const out = probe(resources, 'https://www.wikipedia.org');
    expect(out).toMatchObject({ exitCode: 35, proxyLogLines: [] });
    expect(out.trace.join('\n')).toMatch(/no filter chain for SNI www\.wikipedia\.org/);
  });

  it('logs nothing when the tunnel cluster speaks plain text to the TLS proxy', async () => {
    const resources = await manifests([...TLS_PASSTHROUGH, 'tls-passthrough/tcp-tunnel-filter.yaml']);
    delete find<TunnelFilter>(resources, 'EnvoyFilter').spec.configPatches[0]!.patch.value.transport_socket;
    expect(probe(resources, 'https://www.google.com')).toMatchObject({ exitCode: 35, proxyLogLines: [] });
  });

  it('fails the certificate check when the tunnel goes to another host, unless --insecure', async () => {
    const resources = await manifests([...TLS_PASSTHROUGH, 'tls-passthrough/tcp-tunnel-filter.yaml']);
    const filter = find<TunnelFilter>(resources, 'EnvoyFilter');
    filter.spec.configPatches[1]!.patch.value.filter_chains[0]!.filters[0]!.typed_config.tunneling_config.hostname =
      'www.wikipedia.org:443';
    const strict = probe(resources, 'https://www.google.com');
    expect(strict).toMatchObject({ exitCode: 60, httpCode: 0 });
    expect(strict.proxyLogLines[0]).toContain('www.wikipedia.org:443');
    expect(
      probe(resources, 'https://www.google.com', {
        request: { url: 'https://www.google.com', insecure: true },
      }),
    ).toMatchObject({ exitCode: 0, httpCode: 200 });
  });

  it('fails when the proxy machine is down', async () => {
    const resources = await manifests([...TLS_PASSTHROUGH, 'tls-passthrough/tcp-tunnel-filter.yaml']);
    const out = probe(resources, 'https://www.google.com', { lab: { ...LAB, proxy: undefined } });
    expect(out).toMatchObject({ exitCode: 35, proxyLogLines: [] });
  });

  it("reproduces the PoC's conflict with one VirtualService for both hosts, while both still reach the proxy", async () => {
    const resources = [
      ...(await manifests([
        'tls-passthrough/service-entries.yaml',
        'tls-passthrough/tcp-tunnel-filter.yaml',
      ])),
      pocVirtualService('external-outbound-traffic-through-egress-gateway', 'networking.istio.io/v1alpha3'),
    ];
    const out = probe(resources, 'https://www.wikipedia.org');
    expect(out.pushStatus).toEqual({
      [CONFLICT_TCP_OVER_TCP]: {
        '0.0.0.0_443': {
          proxy: 'curl-698cfc4445-5f4w2.default',
          message: 'Listener=0.0.0.0_443 Accepted=TCP Rejected=TCP (www.wikipedia.org)',
        },
      },
    });
    // The rejected service's SNI is in the accepted chain's match, which routes to the same gateway: the
    // PoC's log shows both hosts' CONNECTs despite the conflict.
    expect(out).toMatchObject({ exitCode: 0, httpCode: 200 });
    expect(out.proxyLogLines[0]).toContain('www.wikipedia.org:443');
    // One VirtualService per host (egress-routing.yaml) is clean.
    const clean = await manifests([...TLS_PASSTHROUGH, 'tls-passthrough/tcp-tunnel-filter.yaml']);
    expect(probe(clean, 'https://www.wikipedia.org').pushStatus).toEqual({});
    expect(pushStatusOf(clean, [{ pod: 'curl-1', namespace: 'default' }])).toEqual({});
    expect(pushStatusOf(resources, [{ pod: 'curl-1', namespace: 'default' }])[CONFLICT_TCP_OVER_TCP]).toEqual(
      expect.any(Object),
    );
  });

  it("tunnels with Istio's native DestinationRule tunnel settings through a passthrough Gateway", async () => {
    const resources = await manifests([...TLS_PASSTHROUGH, 'tls-passthrough/native-tunnel.yaml']);
    const out = probe(resources, 'https://www.wikipedia.org');
    expect(out).toMatchObject({ exitCode: 0, httpCode: 200 });
    expect(out.proxyLogLines).toHaveLength(2);
    expect(out.proxyLogLines[1]).toMatch(LOG_LINE);
    expect(out.proxyLogLines[1]).toContain('www.wikipedia.org:443');
    expect(out.trace.join('\n')).toMatch(
      /tcp_proxy tunnels over cluster outbound\|3128\|tunnel-1\|external-proxy/,
    );
    // Without TLS to the proxy the handshake fails and nothing is logged.
    const dr = find<ProxyRule>(resources, 'DestinationRule', 'external-proxy');
    for (const subset of dr.spec.subsets) delete subset.trafficPolicy.tls;
    delete dr.spec.trafficPolicy;
    expect(probe(resources, 'https://www.wikipedia.org')).toMatchObject({ exitCode: 35, proxyLogLines: [] });
  });

  it('rejects both listeners when a Gateway server and the EnvoyFilter both claim port 8443', async () => {
    const resources = await manifests([
      ...TLS_PASSTHROUGH,
      'tls-passthrough/native-tunnel.yaml',
      'tls-passthrough/tcp-tunnel-filter.yaml',
    ]);
    const out = probe(resources, 'https://www.google.com');
    expect(out).toMatchObject({ exitCode: 35, proxyLogLines: [] });
    expect(out.trace.join('\n')).toMatch(
      /Envoy rejected the listener update \(LDS: duplicate listener 0\.0\.0\.0_8443 found\)/,
    );
  });

  it("hands the external app's requests to the caller, and fails to resolve it without its Service", async () => {
    const resources = await manifests(['mtls/external-app.yaml']);
    const url = 'https://external-app.default.svc.cluster.local';
    for (const sidecar of [true, false]) {
      expect(probe(resources, url, { source: { pod: 'p', namespace: 'default', sidecar } })).toMatchObject({
        exitCode: 0,
        appRequest: { host: 'external-app.default.svc.cluster.local', port: 443, via: 'direct' },
      });
    }
    expect(probe([], url)).toMatchObject({
      exitCode: 6,
      error: `Could not resolve host: external-app.default.svc.cluster.local`,
    });
  });
});
