/**
 * The Istio oracle itself (tools/istio-oracle): every asset checked by its owner's rules. Each check is
 * shown failing on a deliberately broken copy.
 * - Manifests: Kubernetes objects decoded strictly into the API's Go types, Istio objects' specs into
 *   Istio's protobuf messages (unknown fields are errors, as under kubectl's --validate=strict), then
 *   Istio's own validation (what its webhook and `istioctl validate` reject).
 * - envoy/envoy.yaml: decoded strictly into Envoy's Bootstrap v3 and checked with Envoy's field rules,
 *   typed_config contents included; deprecated fields are reported.
 */
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { projectRoot } from '../src/config.js';
import { loadLab } from '../src/lab/definition.js';
import { renderManifestSet } from '../src/mesh/manifest-set.js';
import { oracleRequest } from '../src/mesh/manifest-set.js';
import { ensureOracle, runOracle, validateEnvoyFiles, type OracleObject } from '../src/mesh/oracle.js';
import { verdictKey } from '../src/mesh/verdict.js';

const root = projectRoot();
let oracle: string;

beforeAll(async () => {
  oracle = await ensureOracle(root, (line) => console.log(line));
}, 1_800_000);

async function templates(): Promise<string[]> {
  const dir = path.join(root, 'manifests');
  const out: string[] = [];
  for (const sub of await readdir(dir, { withFileTypes: true })) {
    if (!sub.isDirectory()) continue;
    for (const f of await readdir(path.join(dir, sub.name)))
      if (f.endsWith('.yaml')) out.push(`${sub.name}/${f}`);
  }
  return out.sort();
}

async function judge(yaml: string): Promise<OracleObject[]> {
  const answer = await runOracle(oracle, {
    manifests: yaml,
    outboundTrafficPolicy: 'REGISTRY_ONLY',
    probes: [],
  });
  return answer.objects;
}

/** Istio's standing warning on every EnvoyFilter; anything else is a finding. */
const ENVOYFILTER_WARNING = /^EnvoyFilter exposes internal implementation details/;

describe('manifests', () => {
  it.each(['sim', 'vagrant'])(
    'every template rendered for the %s lab passes the schemas and Istio validation',
    async (labName) => {
      const lab = await loadLab(labName, { projectRoot: root, stateDir: '/nonexistent' });
      const files = await templates();
      expect(files.length).toBeGreaterThanOrEqual(7);
      const set = await renderManifestSet(
        files.map((file) => ({ file })),
        { projectRoot: root, lab },
      );
      const objects = (
        await runOracle(oracle, oracleRequest(set, { outboundTrafficPolicy: 'REGISTRY_ONLY' }, []))
      ).objects;
      expect(objects).toHaveLength(set.documents.length);
      const findings = objects
        .map((o) => ({ ...o, warnings: (o.warnings ?? []).filter((w) => !ENVOYFILTER_WARNING.test(w)) }))
        .filter((o) => !o.accepted || o.warnings.length > 0);
      expect(findings).toEqual([]);
    },
  );

  it('rejects a broken copy of each kind of object, naming the field', async () => {
    const objects = await judge(
      [
        // A Kubernetes object with a misspelt field.
        'apiVersion: v1\nkind: Service\nmetadata: { name: app }\nspec: { ports: [{ port: 443, targetPortt: 443 }] }',
        // An Istio object with a misspelt field.
        'apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: { name: se }\nspec: { hosts: [a.example], resolutoin: DNS, ports: [{ number: 443, name: tls, protocol: TLS }] }',
        // An Istio object that parses but breaks Istio's rules.
        'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: { name: vs }\nspec: { hosts: [a.example], tls: [{ match: [{ port: 443 }], route: [{ destination: { host: a.example } }] }] }',
      ].join('\n---\n'),
    );
    expect(objects.map((o) => ({ kind: o.kind, accepted: o.accepted, errors: o.errors }))).toEqual([
      {
        kind: 'Service',
        accepted: false,
        errors: ['strict decoding error: unknown field "spec.ports[0].targetPortt"'],
      },
      {
        kind: 'ServiceEntry',
        accepted: false,
        errors: [expect.stringMatching(/unknown field "resolutoin"/)],
      },
      { kind: 'VirtualService', accepted: false, errors: ['TLS match must have at least one SNI host'] },
    ]);
  });

  it("reports what Istio's analyzers find: a route to a missing Gateway, a TCP ServiceEntry without addresses", async () => {
    const answer = await runOracle(oracle, {
      manifests: [
        'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: { name: vs }\n' +
          'spec: { hosts: [a.example], gateways: [nope], tls: [{ match: [{ port: 443, sniHosts: [a.example] }], route: [{ destination: { host: a.example } }] }] }',
        'apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: { name: tcp }\n' +
          'spec: { hosts: [p.example], ports: [{ number: 3128, name: tcp, protocol: TCP }], resolution: STATIC, endpoints: [{ address: 192.0.2.1 }] }',
      ].join('\n---\n'),
      outboundTrafficPolicy: 'REGISTRY_ONLY',
      probes: [],
    });
    expect(answer.analysis.map((f) => [f.code, f.level, f.resource])).toEqual([
      ['IST0101', 'Error', 'default/vs'],
      ['IST0132', 'Warning', 'default/vs'],
      ['IST0134', 'Warning', 'default/tcp'],
    ]);
  });

  it('only warns on an EnvoyFilter value with a misspelt Envoy field, as istioctl validate does', async () => {
    const [filter] = await judge(
      'apiVersion: networking.istio.io/v1alpha3\nkind: EnvoyFilter\nmetadata: { name: f, namespace: istio-system }\n' +
        'spec: { configPatches: [{ applyTo: CLUSTER, patch: { operation: ADD, value: { name: c, clustr_type: x } } }] }',
    );
    expect(filter).toMatchObject({ accepted: true });
    expect(filter!.warnings).toEqual(
      expect.arrayContaining([expect.stringMatching(/unknown field "clustr_type"/)]),
    );
  });
});

describe('envoy/envoy.yaml', () => {
  const envoyYaml = path.join(root, 'envoy', 'envoy.yaml');

  it("passes Envoy's field rules with no deprecated field", async () => {
    expect(await validateEnvoyFiles(oracle, [envoyYaml])).toEqual([
      { file: envoyYaml, errors: [], warnings: [] },
    ]);
  });

  it('fails a broken copy: a misspelt field, a missing required value inside a typed_config', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'envoy-validate-'));
    const text = await readFile(envoyYaml, 'utf8');
    const misspelt = path.join(dir, 'misspelt.yaml');
    await writeFile(misspelt, text.replace('connect_timeout: 5s', 'connect_timeoutt: 5s'));
    const config = parse(text) as {
      static_resources: {
        listeners: { filter_chains: { filters: { typed_config: Record<string, unknown> }[] }[] }[];
      };
    };
    delete config.static_resources.listeners[0]!.filter_chains[0]!.filters[0]!.typed_config.stat_prefix;
    const missing = path.join(dir, 'missing.yaml');
    await writeFile(missing, stringify(config));
    const [a, b] = await validateEnvoyFiles(oracle, [misspelt, missing]);
    expect(a!.errors).toEqual([expect.stringMatching(/unknown field "connect_timeoutt"/)]);
    // Both listeners share the HTTP connection manager (a YAML anchor), so both report it.
    expect(b!.errors).toEqual(
      [0, 1].map((i): unknown =>
        expect.stringMatching(
          new RegExp(
            `^static_resources\\.listeners\\[${i}\\]\\..*HttpConnectionManager\\.StatPrefix: value length must be at least 1`,
          ),
        ),
      ),
    );
  });

  it("flags the proof of concept's deprecated FileAccessLog.format", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'envoy-validate-'));
    const poc = path.join(dir, 'poc.yaml');
    // The PoC's access log: the format string in `format`, which Envoy deprecated for log_format.
    const config = parse(await readFile(envoyYaml, 'utf8')) as {
      static_resources: {
        listeners: {
          filter_chains: {
            filters: { typed_config: { access_log: { typed_config: Record<string, unknown> }[] } }[];
          }[];
        }[];
      };
    };
    const log =
      config.static_resources.listeners[0]!.filter_chains[0]!.filters[0]!.typed_config.access_log[0]!
        .typed_config;
    log.format = (
      log.log_format as { text_format_source: { inline_string: string } }
    ).text_format_source.inline_string;
    delete log.log_format;
    await writeFile(poc, stringify(config));
    const [report] = await validateEnvoyFiles(oracle, [poc]);
    expect(report!.errors).toEqual([]);
    // The three listeners share the access log (a YAML anchor), so each reports it.
    expect(report!.warnings).toEqual(
      [0, 1, 2].map((i): unknown =>
        expect.stringMatching(
          new RegExp(
            `^static_resources\\.listeners\\[${i}\\]\\..*access_log\\[0\\]\\.typed_config\\.format: deprecated field`,
          ),
        ),
      ),
    );
  });
});

test("lists the Envoy extensions each proxy's config needs, and the istiod setting that leaves the gateway upstream Envoy's only", async () => {
  const lab = await loadLab('sim', { projectRoot: root, stateDir: '/nonexistent' });
  const set = await renderManifestSet(
    [
      'tls-passthrough/service-entries.yaml',
      'tls-passthrough/egress-routing.yaml',
      'tls-passthrough/tcp-tunnel-filter.yaml',
    ].map((file) => ({ file })),
    { projectRoot: root, lab },
  );
  const request = oracleRequest(set, { outboundTrafficPolicy: 'REGISTRY_ONLY' }, [
    { host: 'www.google.com' },
  ]);
  const notUpstream = (types: string[]) => types.filter((t) => !t.startsWith('envoy.extensions.'));
  const mx =
    'udpa.type.v1.TypedStruct (type.googleapis.com/envoy.tcp.metadataexchange.config.MetadataExchange)';
  const alpn = 'istio.envoy.config.filter.http.alpn.v2alpha1.FilterConfig';
  const defaults = await runOracle(oracle, request);
  expect(notUpstream(defaults.proxies.gateway.extensions)).toEqual([mx]);
  expect(notUpstream(defaults.proxies.sidecar.extensions)).toEqual([
    alpn,
    mx,
    'udpa.type.v1.TypedStruct (type.googleapis.com/io.istio.http.peer_metadata.Config)',
  ]);
  // istiod with PILOT_ENABLE_METADATA_EXCHANGE=false: the gateway's config is upstream Envoy's alone, and
  // the tunnel is unchanged; the sidecar still needs Istio's ALPN filter.
  const noMx = await runOracle(oracle, request, { env: { PILOT_ENABLE_METADATA_EXCHANGE: 'false' } });
  expect(notUpstream(noMx.proxies.gateway.extensions)).toEqual([]);
  expect(notUpstream(noMx.proxies.sidecar.extensions)).toEqual([alpn]);
  expect(noMx.verdicts.map(verdictKey)).toEqual(defaults.verdicts.map(verdictKey));
});

test('names the Istio and Envoy API versions it was built from, as pinned in its go.mod', async () => {
  const gomod = await readFile(path.join(root, 'tools', 'istio-oracle', 'go.mod'), 'utf8');
  const pinned = /istio\.io\/istio (\S+)/.exec(gomod)![1];
  const { versions } = await runOracle(oracle, {
    manifests: '',
    outboundTrafficPolicy: 'ALLOW_ANY',
    probes: [],
  });
  expect(versions['istio.io/istio']).toBe(pinned);
  expect(versions['github.com/envoyproxy/go-control-plane/envoy']).toMatch(/^v1\.\d+/);
});
