/**
 * A set of manifests as the mesh engines read it: templates under `manifests/` (or inline YAML) rendered
 * for a lab, in apply order, plus how Istio is installed there. From it come the oracle's request and the
 * simulated lab's model input, so both engines judge exactly what a playbook applies.
 */
import { stringify } from 'yaml';
import { SHARED_EGRESS_GATEWAY, type LabDefinition } from '../lab/definition.js';
import {
  labDefaultValues,
  labValues,
  manifestPath,
  manifestsDir,
  mergeValues,
  renderManifest,
  renderManifestFile,
} from '../lab/render.js';
import type { MeshProbe, OracleRequest } from './oracle.js';

export interface ManifestRef {
  /** A template under `manifests/`. */
  file?: string;
  /** Inline YAML, rendered like a template. */
  yaml?: string;
  /** Overrides of `manifests/values.yaml` for this entry. */
  values?: Record<string, unknown>;
}

export type KubeDocument = Record<string, unknown> & {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; labels?: Record<string, string> };
};

export interface RenderedSet {
  documents: KubeDocument[];
  /** `manifests/values.yaml` as the first entry's values see it (the gateway and client settings). */
  values: Record<string, unknown>;
}

/** Renders each entry with the lab's addresses and its values; documents keep the order given. */
export async function renderManifestSet(
  refs: ManifestRef[],
  options: {
    projectRoot: string;
    lab: LabDefinition;
    values?: Record<string, unknown>;
    /** The run's secrets (`${{ secrets.* }}`). */
    secrets?: Record<string, string>;
  },
): Promise<RenderedSet> {
  const dir = manifestsDir(options.projectRoot);
  const base = mergeValues(await labDefaultValues(dir, options.lab), options.values ?? {});
  const lab = labValues(options.lab);
  const documents: KubeDocument[] = [];
  for (const [i, ref] of refs.entries()) {
    const context = { lab, values: mergeValues(base, ref.values ?? {}), secrets: options.secrets ?? {} };
    const rendered = ref.file
      ? await renderManifestFile(manifestPath(dir, ref.file), context, ref.file)
      : renderManifest(ref.yaml ?? '', context, `manifests[${i}]`);
    documents.push(...(rendered.documents as KubeDocument[]));
  }
  return { documents, values: base };
}

export interface MeshSettings {
  outboundTrafficPolicy: 'ALLOW_ANY' | 'REGISTRY_ONLY';
  /** Labels of the egress gateway's pods; the demo profile's by default. */
  gatewayLabels?: Record<string, string>;
  /**
   * An egress gateway deployed beside the installation's (a lab's `egressGateway: own`), its pods labelled
   * `gatewayLabels`; values.egressGateway must name it too.
   */
  ownGateway?: { namespace: string; service: string };
  /** The client pod the probes run in. */
  client?: { pod: string; namespace: string; labels: Record<string, string> };
}

export const DEMO_GATEWAY_LABELS = { app: 'istio-egressgateway', istio: 'egressgateway' };

/** The client the playbooks probe from: Istio's samples/curl in the namespace default. */
export const DEFAULT_CLIENT = { pod: 'curl', namespace: 'default', labels: { app: 'curl' } };

/** The egress gateway's Service as `manifests/values.yaml` names it, with the installed pods' labels. */
export function gatewayOf(values: Record<string, unknown>, labels?: Record<string, string>) {
  const gw = (values.egressGateway ?? {}) as {
    namespace?: string;
    service?: string;
    port?: number;
    targetPort?: number;
    httpPort?: number;
    httpTargetPort?: number;
  };
  return {
    namespace: gw.namespace ?? SHARED_EGRESS_GATEWAY.namespace,
    service: gw.service ?? SHARED_EGRESS_GATEWAY.service,
    labels: labels ?? DEMO_GATEWAY_LABELS,
    ports: [
      { name: 'http2', port: gw.httpPort ?? 80, targetPort: gw.httpTargetPort ?? 8080 },
      { name: 'https', port: gw.port ?? 443, targetPort: gw.targetPort ?? 8443 },
    ],
  };
}

/** The oracle's request for a rendered set. */
export function oracleRequest(set: RenderedSet, settings: MeshSettings, probes: MeshProbe[]): OracleRequest {
  return {
    manifests: set.documents.map((d) => stringify(d, { lineWidth: 0 })).join('---\n'),
    outboundTrafficPolicy: settings.outboundTrafficPolicy,
    gateway: gatewayOf(set.values, settings.gatewayLabels),
    client: settings.client ?? DEFAULT_CLIENT,
    probes,
  };
}
