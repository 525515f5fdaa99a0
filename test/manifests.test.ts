import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { loadLab, type LabDefinition } from '../src/lab/definition.js';
import {
  defaultValues,
  labValues,
  manifestPath,
  manifestsDir,
  mergeValues,
  renderManifest,
  renderManifestFile,
} from '../src/lab/render.js';
import { ManifestError } from '../src/errors.js';
import { root } from './support/temporal.js';

const dir = manifestsDir(root);

/** Kinds each template must produce (with the default two hosts). */
const EXPECTED: Record<string, string[]> = {
  'common/curl.yaml': ['ServiceAccount', 'Service', 'Deployment'],
  'common/egress-gateway.yaml': ['ServiceAccount', 'Deployment', 'Service'],
  'tls-passthrough/service-entries.yaml': ['ServiceEntry', 'ServiceEntry'],
  'tls-passthrough/egress-routing.yaml': ['DestinationRule', 'VirtualService', 'VirtualService'],
  'tls-passthrough/tcp-tunnel-filter.yaml': ['EnvoyFilter'],
  'tls-passthrough/native-tunnel.yaml': [
    'ServiceEntry',
    'DestinationRule',
    'Gateway',
    'VirtualService',
    'VirtualService',
  ],
  'tls-passthrough/native-tunnel-sidecar.yaml': [
    'ServiceEntry',
    'DestinationRule',
    'VirtualService',
    'VirtualService',
  ],
  // TLS to the proxy by default: its DestinationRule is there.
  'tls-passthrough/tcp-tunnel-filter-sidecar.yaml': [
    'ServiceEntry',
    'DestinationRule',
    'VirtualService',
    'VirtualService',
    'EnvoyFilter',
  ],
  'mtls/client.yaml': ['Deployment'],
  'mtls/external-app.yaml': ['Service', 'EndpointSlice'],
  'http/external-app.yaml': ['Service', 'EndpointSlice'],
  'http/egress-routing.yaml': ['DestinationRule', 'VirtualService'],
  'http/tcp-tunnel-filter.yaml': ['EnvoyFilter'],
  'http/native-tunnel.yaml': ['ServiceEntry', 'DestinationRule', 'Gateway', 'VirtualService'],
};

async function templates(): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true });
  return entries
    .filter((e) => e.endsWith('.yaml') && e !== 'values.yaml')
    .map((e) => e.split(path.sep).join('/'))
    .sort();
}

async function labDef(name: string): Promise<LabDefinition> {
  return loadLab(name, { projectRoot: root, stateDir: '/tmp/tunnel-lab-render-test/lab' });
}

describe('manifest templates', () => {
  it('are all listed here, so that a new one gets checked', async () => {
    expect(await templates()).toEqual(Object.keys(EXPECTED).sort());
  });

  for (const labName of ['sim', 'vagrant']) {
    it(`render for labs/${labName}.yaml into YAML with the expected kinds and no expression left`, async () => {
      const def = await labDef(labName);
      const context = { lab: labValues(def), values: await defaultValues(dir) };
      for (const file of await templates()) {
        const { yaml, documents } = await renderManifestFile(path.join(dir, file), context, file);
        const reparsed = parseAllDocuments(yaml).map((d) => {
          expect(d.errors).toEqual([]);
          return d.toJS() as { apiVersion: string; kind: string; metadata: { name: string } };
        });
        expect({ file, kinds: reparsed.map((d) => d.kind) }).toEqual({ file, kinds: EXPECTED[file] });
        expect(reparsed).toEqual(documents);
        for (const doc of reparsed) {
          expect(doc.apiVersion).toMatch(/^([\w.]+\/)?v\w+$/);
          expect(doc.metadata.name).toMatch(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/);
        }
        expect(yaml).not.toContain('${{');
        expect(yaml).not.toContain('$forEach');
        expect(yaml).not.toContain('$if');
      }
    });
  }

  it('take addresses and ports from the lab and repeat per host', async () => {
    const def = await labDef('sim');
    const values = mergeValues(await defaultValues(dir), {
      hosts: ['www.google.com', 'example.org', 'www.wikipedia.org'],
    });
    const { documents } = await renderManifestFile(
      path.join(dir, 'tls-passthrough/tcp-tunnel-filter.yaml'),
      { lab: labValues(def), values },
      'tcp-tunnel-filter.yaml',
    );
    const text = JSON.stringify(documents);
    expect(text).toContain('"address":"192.168.56.10","port_value":3128');
    interface Chain {
      filter_chain_match: { server_names: string[] };
      filters: { typed_config: { cluster: string; tunneling_config: { hostname: string } } }[];
    }
    const filter = documents[0] as {
      spec: { configPatches: { patch: { value: { filter_chains?: Chain[] } } }[] };
    };
    const chains = filter.spec.configPatches[1]!.patch.value.filter_chains!;
    expect(chains.map((c) => c.filter_chain_match.server_names[0])).toEqual([
      'www.google.com',
      'example.org',
      'www.wikipedia.org',
    ]);
    expect(chains.map((c) => c.filters[0]!.typed_config.tunneling_config.hostname)).toEqual([
      'www.google.com:443',
      'example.org:443',
      'www.wikipedia.org:443',
    ]);
    expect(chains[0]!.filters[0]!.typed_config.cluster).toBe('external-proxy');
  });

  it('keep the type of a whole-value expression and write text inside strings', () => {
    const { documents } = renderManifest(
      'a: ${{ values.n }}\nb: port-${{ values.n }}\nc: ${{ values.list }}\n${{ values.key }}: x\n',
      { lab: {}, values: { n: 8443, list: ['x', 'y'], key: 'k.pem' } },
      't.yaml',
    );
    expect(documents).toEqual([{ a: 8443, b: 'port-8443', c: ['x', 'y'], 'k.pem': 'x' }]);
  });

  it('name the file and field of an expression that names nothing', () => {
    const render = () =>
      renderManifest(
        "kind: X\nspec:\n  hosts: ['${{ values.hostz }}']\n",
        { lab: {}, values: { hosts: [] } },
        'm.yaml',
      );
    expect(render).toThrow(ManifestError);
    expect(render).toThrow(/m\.yaml: document 1\.spec\.hosts\[0\]: \$\{\{ values\.hostz \}\} names nothing/);
    expect(() =>
      renderManifest('a: ${{ lab.proxy.ipp }}\n', { lab: { proxy: { ip: '1' } }, values: {} }, 'n.yaml'),
    ).toThrow(/lab\.proxy\.ipp is not defined; lab\.proxy has ip/);
    expect(new ManifestError('x').nonRetryable).toBe(true);
  });

  it("read the run's secrets, and say which step makes a missing one", () => {
    const text = 'headers: [{ key: Proxy-Authorization, value: "${{ secrets.proxyAuthorization }}" }]\n';
    const { documents } = renderManifest(
      text,
      { lab: {}, values: {}, secrets: { proxyAuthorization: 'Basic eDp5' } },
      's.yaml',
    );
    expect(documents).toEqual([{ headers: [{ key: 'Proxy-Authorization', value: 'Basic eDp5' }] }]);
    expect(() => renderManifest(text, { lab: {}, values: {} }, 's.yaml')).toThrow(
      /s\.yaml: document 1\.headers\[0\]\.value: \$\{\{ secrets\.proxyAuthorization \}\}: this run has no secret proxyAuthorization \(a proxy\.credential step before this one makes it\)/,
    );
  });

  it('reject a malformed $forEach and a list that is not one', () => {
    expect(() => renderManifest('$forEach: hosts\n$item: {}\n', { lab: {}, values: {} }, 'f.yaml')).toThrow(
      /write \$forEach as/,
    );
    expect(() =>
      renderManifest('$forEach: h in values.n\n$item: {}\n', { lab: {}, values: { n: 1 } }, 'f.yaml'),
    ).toThrow(/values\.n is not a list/);
  });

  it('choose a $if branch for a document, a list item and a value, and leave out one without a branch', () => {
    const text = [
      'a: { $if: values.mode == tls, $then: 1, $else: 2 }',
      'b: { $if: values.mode != tls, $then: 3 }',
      'c: [x, { $if: values.on, $then: y }, { $if: values.off, $then: z, $else: { $forEach: n in values.list, $item: "${{ n }}" } }]',
      'd: { $if: values.list, $then: { port: "${{ values.port }}" } }',
      '---',
      '$if: values.off',
      '$then: { kind: Dropped }',
      '',
    ].join('\n');
    const render = (values: Record<string, unknown>) =>
      renderManifest(text, { lab: {}, values: { list: ['p', 'q'], port: 3129, ...values } }, 'i.yaml')
        .documents;
    expect(render({ mode: 'tls', on: true, off: false })).toEqual([
      { a: 1, c: ['x', 'y', 'p', 'q'], d: { port: 3129 } },
    ]);
    expect(render({ mode: 'plain', on: '', off: 0, list: [] })).toEqual([{ a: 2, b: 3, c: ['x'] }]);
    expect(() => render({ mode: 'tls', on: true })).toThrow(
      /i\.yaml: document 1\.c\[2\]: \$\{\{ values\.off \}\} names nothing/,
    );
    expect(() => renderManifest('a: { $if: x y, $then: 1 }\n', { lab: {}, values: {} }, 'j.yaml')).toThrow(
      /j\.yaml: document 1\.a: write \$if as/,
    );
    expect(() =>
      renderManifest('a: { $if: values.x, $than: 1 }\n', { lab: {}, values: { x: 1 } }, 'j.yaml'),
    ).toThrow(/write \$if as/);
  });

  it('render the tunnel manifests for each way to the proxy', async () => {
    const def = await labDef('sim');
    const defaults = await defaultValues(dir);
    const seen: Record<string, unknown> = {};
    for (const transport of ['tls', 'plain']) {
      for (const protocol of ['HTTP/1.1', 'HTTP/2']) {
        const values = mergeValues(defaults, { proxy: { transport, protocol } });
        const context = { lab: labValues(def), values };
        const filter = JSON.stringify(
          (await renderManifestFile(path.join(dir, 'tls-passthrough/tcp-tunnel-filter.yaml'), context))
            .documents,
        );
        const native = (
          await renderManifestFile(path.join(dir, 'tls-passthrough/native-tunnel.yaml'), context)
        ).documents as { kind: string; spec: Record<string, unknown> }[];
        const entry = native.find((d) => d.kind === 'ServiceEntry')!.spec as { ports: unknown[] };
        const rule = JSON.stringify(native.find((d) => d.kind === 'DestinationRule')!.spec);
        seen[`${transport} ${protocol}`] = {
          filter: [
            /"port_value":(\d+)/.exec(filter)![1],
            filter.includes('UpstreamTlsContext'),
            filter.includes('http2_protocol_options'),
          ],
          native: [entry.ports[0], rule.includes('SIMPLE')],
        };
      }
    }
    expect(seen).toEqual({
      'tls HTTP/1.1': {
        filter: ['3128', true, false],
        native: [{ number: 3128, name: 'tcp-proxy', protocol: 'TCP' }, true],
      },
      'tls HTTP/2': {
        filter: ['3128', true, true],
        native: [{ number: 3128, name: 'http2-proxy', protocol: 'HTTP2' }, true],
      },
      'plain HTTP/1.1': {
        filter: ['3129', false, false],
        native: [{ number: 3129, name: 'tcp-proxy', protocol: 'TCP' }, false],
      },
      'plain HTTP/2': {
        filter: ['3129', false, true],
        native: [{ number: 3129, name: 'http2-proxy', protocol: 'HTTP2' }, false],
      },
    });
  });

  it('render a POST tunnel when values.proxy.method says so', async () => {
    const def = await labDef('sim');
    const render = async (method: string) => {
      const context = {
        lab: labValues(def),
        values: mergeValues(await defaultValues(dir), { proxy: { method } }),
      };
      const filter = JSON.stringify(
        (await renderManifestFile(path.join(dir, 'tls-passthrough/tcp-tunnel-filter.yaml'), context))
          .documents,
      );
      const native = JSON.stringify(
        (await renderManifestFile(path.join(dir, 'tls-passthrough/native-tunnel.yaml'), context)).documents,
      );
      return [filter.includes('"use_post":true'), /"tunnel":\{"protocol":"(\w+)"/.exec(native)?.[1]];
    };
    expect(await render('CONNECT')).toEqual([false, 'CONNECT']);
    expect(await render('POST')).toEqual([true, 'POST']);
  });

  it('refuse paths outside manifests/', () => {
    expect(() => manifestPath(dir, '../package.json')).toThrow(ManifestError);
    expect(() => manifestPath(dir, '/etc/passwd')).toThrow(ManifestError);
    expect(manifestPath(dir, 'common/curl.yaml')).toBe(path.join(dir, 'common', 'curl.yaml'));
  });
});
