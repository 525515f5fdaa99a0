/** The mesh corpus (test/fixtures/mesh-corpus/): manifest sets judged by the Istio oracle and the sim's model. */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'yaml';
import { projectRoot } from '../../src/config.js';
import { loadLab } from '../../src/lab/definition.js';
import {
  renderManifestSet,
  type ManifestRef,
  type RenderedSet,
  type MeshSettings,
} from '../../src/mesh/manifest-set.js';
import type { VerdictKind } from '../../src/mesh/verdict.js';
import {
  applyManifest,
  initialCluster,
  istioComponentObjects,
  ISTIO_VERSION,
} from '../../sim/lib/kube-cluster.js';
import { meshVerdicts } from '../../sim/mesh/model.js';

export const CORPUS_DIR = path.join(projectRoot(), 'test', 'fixtures', 'mesh-corpus');

export interface CorpusCase {
  name: string;
  description: string;
  settings: MeshSettings;
  probes: string[];
  set: RenderedSet;
  expect: Record<string, VerdictKind>;
  conflicts: string[];
  nack?: 'sidecar' | 'gateway';
  difference?: string;
}

interface CaseFile {
  description: string;
  outboundTrafficPolicy?: 'ALLOW_ANY' | 'REGISTRY_ONLY';
  gatewayLabels?: Record<string, string>;
  probes: string[];
  manifests: ManifestRef[];
  expect: Record<string, VerdictKind>;
  conflicts?: string[];
  nack?: 'sidecar' | 'gateway';
  difference?: string;
}

export async function loadCorpus(): Promise<CorpusCase[]> {
  const root = projectRoot();
  const lab = await loadLab('sim', { projectRoot: root, stateDir: '/nonexistent' });
  const cases: CorpusCase[] = [];
  for (const file of (await readdir(CORPUS_DIR)).filter((f) => f.endsWith('.yaml')).sort()) {
    const data = parse(await readFile(path.join(CORPUS_DIR, file), 'utf8')) as CaseFile;
    cases.push({
      name: file.replace(/\.yaml$/, ''),
      description: data.description,
      settings: {
        outboundTrafficPolicy: data.outboundTrafficPolicy ?? 'REGISTRY_ONLY',
        gatewayLabels: data.gatewayLabels,
      },
      probes: data.probes,
      set: await renderManifestSet(data.manifests ?? [], { projectRoot: root, lab }),
      expect: data.expect,
      conflicts: data.conflicts ?? [],
      nack: data.nack,
      difference: data.difference,
    });
  }
  return cases;
}

/** The model's answer for a case: the case's objects applied to a fresh simulated cluster with Istio installed. */
export function modelAnswer(c: CorpusCase) {
  const state = initialCluster();
  state.istio = {
    version: ISTIO_VERSION,
    profile: 'demo',
    set: {},
    components: ['istiod', 'istio-egressgateway'],
    outboundTrafficPolicy: c.settings.outboundTrafficPolicy,
    accessLogFile: '/dev/stdout',
  };
  const apply = (doc: unknown) => {
    const result = applyManifest(state, doc, { file: c.name });
    if (result.error) throw new Error(`${c.name}: ${result.error}`);
  };
  apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'istio-system' } });
  for (const name of ['istiod', 'istio-egressgateway']) {
    const labels = name === 'istio-egressgateway' ? c.settings.gatewayLabels : undefined;
    for (const object of istioComponentObjects(name, 'istio-system', labels)) apply(object);
  }
  for (const doc of c.set.documents) apply(doc);
  const resources = Object.values(state.objects)
    .sort((a, b) => a.seq - b.seq)
    .map((s) => s.object);
  return meshVerdicts(
    {
      resources,
      istio: {
        outboundTrafficPolicy: c.settings.outboundTrafficPolicy,
        gateways: ['istio-system/istio-egressgateway'],
      },
      lab: MODEL_LAB,
      source: { pod: 'curl', namespace: 'default', sidecar: true },
      now: new Date('2026-01-01T00:00:00Z'),
      sourcePort: 40_000,
    },
    c.probes.map((host) => ({ host })),
  );
}

export const MODEL_LAB = {
  nodeIp: '192.168.56.20',
  proxy: { ip: '192.168.56.10', port: 3128 },
  app: { ip: '192.168.56.30', port: 443 },
};
