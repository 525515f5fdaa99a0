/** The mesh corpus (test/fixtures/mesh-corpus/): manifest sets judged by the Istio oracle and the sim's model. */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'yaml';
import { projectRoot } from '../../src/config.js';
import { loadLab, ownEgressGateway } from '../../src/lab/definition.js';
import {
  DEFAULT_CLIENT,
  renderManifestSet,
  type ManifestRef,
  type RenderedSet,
  type MeshSettings,
} from '../../src/mesh/manifest-set.js';
import { parseProbe, type MeshProbe } from '../../src/mesh/oracle.js';
import type { VerdictKind } from '../../src/mesh/verdict.js';
import { modelAnswer } from '../../sim/mesh/answer.js';

export const CORPUS_DIR = path.join(projectRoot(), 'test', 'fixtures', 'mesh-corpus');

export interface CorpusCase {
  name: string;
  description: string;
  settings: MeshSettings;
  /** As the case file names them (the keys of `expect`), and as the engines take them. */
  probes: string[];
  meshProbes: MeshProbe[];
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
  /** The client pod's namespace; default by default (the lab's, with `lab`). */
  clientNamespace?: string;
  /** The sim lab with these lab-file fields: its namespace, and its own egress gateway. */
  lab?: { namespace?: string; egressGateway?: 'shared' | 'own' };
  probes: string[];
  manifests: ManifestRef[];
  expect: Record<string, VerdictKind>;
  conflicts?: string[];
  nack?: 'sidecar' | 'gateway';
  difference?: string;
  /** The run's secrets the templates read (`${{ secrets.* }}`): a test credential. */
  secrets?: Record<string, string>;
}

export async function loadCorpus(): Promise<CorpusCase[]> {
  const root = projectRoot();
  const lab = await loadLab('sim', { projectRoot: root, stateDir: '/nonexistent' });
  const cases: CorpusCase[] = [];
  for (const file of (await readdir(CORPUS_DIR)).filter((f) => f.endsWith('.yaml')).sort()) {
    const data = parse(await readFile(path.join(CORPUS_DIR, file), 'utf8')) as CaseFile;
    const caseLab = data.lab ? { ...lab, ...data.lab } : lab;
    const own = ownEgressGateway(caseLab);
    const clientNamespace = data.clientNamespace ?? (data.lab?.namespace ? caseLab.namespace : undefined);
    cases.push({
      name: file.replace(/\.yaml$/, ''),
      description: data.description,
      settings: {
        outboundTrafficPolicy: data.outboundTrafficPolicy ?? 'REGISTRY_ONLY',
        gatewayLabels: own?.selector ?? data.gatewayLabels,
        ...(own ? { ownGateway: { namespace: own.namespace, service: own.service } } : {}),
        ...(clientNamespace ? { client: { ...DEFAULT_CLIENT, namespace: clientNamespace } } : {}),
      },
      probes: data.probes,
      meshProbes: data.probes.map((p) => {
        const probe = parseProbe(p);
        if (!probe) throw new Error(`${file}: probe ${p} is neither a host nor an http(s):// URL`);
        return probe;
      }),
      set: await renderManifestSet(data.manifests ?? [], {
        projectRoot: root,
        lab: caseLab,
        ...(data.secrets ? { secrets: data.secrets } : {}),
      }),
      expect: data.expect,
      conflicts: data.conflicts ?? [],
      nack: data.nack,
      difference: data.difference,
    });
  }
  return cases;
}

/** The model's answer for a case. */
export function caseModelAnswer(c: CorpusCase) {
  return modelAnswer(c.set.documents, c.settings, c.meshProbes);
}

/**
 * The proof of concept's routing: one VirtualService that lists both hosts under one sniHosts match and
 * sends them to the egress gateway (what makes istiod report a listener conflict on 0.0.0.0:443).
 */
export function pocVirtualService(name: string, apiVersion = 'networking.istio.io/v1') {
  const hosts = ['www.google.com', 'www.wikipedia.org'];
  return {
    apiVersion,
    kind: 'VirtualService',
    metadata: { name, namespace: 'default' },
    spec: {
      hosts,
      gateways: ['mesh'],
      tls: [
        {
          match: [{ gateways: ['mesh'], port: 443, sniHosts: hosts }],
          route: [
            {
              destination: {
                host: 'istio-egressgateway.istio-system.svc.cluster.local',
                port: { number: 443 },
              },
            },
          ],
        },
      ],
    },
  };
}
