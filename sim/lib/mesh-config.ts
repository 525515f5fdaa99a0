/**
 * The `istio` ConfigMap in istio-system, as `istioctl install` writes it: the mesh config that
 * `--set meshConfig.a.b=v` values make, which istiod reads and `istio.install` checks on an existing lab.
 */
import { stringify } from 'yaml';

type Doc = Record<string, unknown>;

/** The mesh config of `--set` values (nested keys); keys outside `meshConfig.` are not part of it. */
export function meshConfigOf(set: Record<string, string>): Doc {
  const mesh: Doc = {};
  for (const [key, value] of Object.entries(set)) {
    if (!key.startsWith('meshConfig.')) continue;
    const parts = key.slice('meshConfig.'.length).split('.');
    let at = mesh;
    for (const part of parts.slice(0, -1)) at = (at[part] ??= {}) as Doc;
    at[parts.at(-1)!] = value;
  }
  return mesh;
}

/** The `istio` ConfigMap holding `mesh`. */
export function meshConfigMap(mesh: Doc, revision?: string): Doc {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: revision ? `istio-${revision}` : 'istio',
      namespace: 'istio-system',
      labels: { 'istio.io/rev': revision ?? 'default' },
    },
    data: { mesh: stringify(mesh), meshNetworks: 'networks: {}\n' },
  };
}
