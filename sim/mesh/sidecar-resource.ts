/**
 * The `Sidecar` resource a sidecar proxy uses, as istiod picks it, and the outbound traffic policy it
 * sets: the namespace's scoped alternative to the mesh-wide `outboundTrafficPolicy.mode`.
 */
import { ROOT_NAMESPACE } from './registry.js';
import type { MeshObject } from './types.js';
import { list, obj, text } from './values.js';

type Mode = 'ALLOW_ANY' | 'REGISTRY_ONLY';

/**
 * The Sidecar resource that applies to a pod: in its namespace, the oldest one whose workloadSelector
 * matches its labels, else the oldest one without a selector; else the root namespace's oldest one
 * without a selector. Gateways use none.
 */
export function sidecarResourceOf(
  resources: MeshObject[],
  pod: { namespace: string; labels?: Record<string, string> },
): MeshObject | undefined {
  const sidecars = resources.filter((r) => r.kind === 'Sidecar');
  const selector = (r: MeshObject) =>
    (obj(obj(r.spec).workloadSelector).labels ?? {}) as Record<string, string>;
  const unselected = (r: MeshObject) => Object.keys(selector(r)).length === 0;
  const inNamespace = sidecars.filter((r) => (r.metadata.namespace ?? 'default') === pod.namespace);
  const labels = pod.labels ?? {};
  return (
    inNamespace.find(
      (r) => !unselected(r) && Object.entries(selector(r)).every(([k, v]) => labels[k] === v),
    ) ??
    inNamespace.find(unselected) ??
    sidecars.find((r) => r.metadata.namespace === ROOT_NAMESPACE && unselected(r))
  );
}

/** The outbound policy of a pod's sidecar: its Sidecar resource's, else the mesh's. */
export function outboundPolicyOf(
  resources: MeshObject[],
  pod: { namespace: string; labels?: Record<string, string> },
  mesh: Mode,
): { mode: Mode; from?: string } {
  const sidecar = sidecarResourceOf(resources, pod);
  const mode = text(obj(obj(sidecar?.spec).outboundTrafficPolicy).mode);
  if (sidecar && (mode === 'ALLOW_ANY' || mode === 'REGISTRY_ONLY')) {
    return { mode, from: `Sidecar ${sidecar.metadata.namespace ?? 'default'}/${sidecar.metadata.name}` };
  }
  return { mode: mesh };
}

/**
 * Why the model cannot judge a pod under its Sidecar resource, if it cannot: egress listeners that
 * narrow what the sidecar sees (hosts other than every namespace's, or a port), which it does not model.
 */
export function unmodelledSidecarScope(
  resources: MeshObject[],
  pod: { namespace: string; labels?: Record<string, string> },
): string | undefined {
  const sidecar = sidecarResourceOf(resources, pod);
  if (!sidecar) return undefined;
  const egress = list(obj(sidecar.spec).egress).map(obj);
  const everything = egress.every((e) => {
    const hosts = list(e.hosts) as unknown[];
    return e.port === undefined && hosts.length > 0 && hosts.every((h) => h === '*/*');
  });
  return everything
    ? undefined
    : `Sidecar ${sidecar.metadata.namespace ?? 'default'}/${sidecar.metadata.name} narrows the sidecar's egress, which the model does not follow`;
}
