/**
 * The table `kubectl get` prints without `-o` (or with `-o wide`): kubectl's columns for pods,
 * deployments, namespaces, nodes and services, NAME and AGE for other kinds, with the NAMESPACE and LABELS
 * columns of `-A` and `--show-labels`.
 */
import { KUBE_VERSION, type KindInfo, type KubeObject } from '../lib/kube-cluster.js';

function age(object: KubeObject): string {
  const seconds = Math.max(
    0,
    Math.round((Date.now() - Date.parse(object.metadata.creationTimestamp ?? '')) / 1000),
  );
  if (!Number.isFinite(seconds)) return '<unknown>';
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 7200) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 172_800) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86_400)}d`;
}

export function table(
  info: KindInfo,
  objects: KubeObject[],
  allNs: boolean,
  noHeaders: boolean,
  showLabels: boolean,
): string[] {
  const rows: string[][] = [];
  const status = (o: KubeObject) => (o.status ?? {}) as Record<string, unknown>;
  const spec = (o: KubeObject) => (o.spec ?? {}) as Record<string, unknown>;
  let header: string[];
  let row: (o: KubeObject) => string[];
  switch (info.kind) {
    case 'Pod':
      header = ['NAME', 'READY', 'STATUS', 'RESTARTS', 'AGE'];
      row = (o) => {
        const cs = (status(o).containerStatuses ?? []) as { ready: boolean }[];
        const phase = String(status(o).phase);
        return [
          o.metadata.name,
          `${cs.filter((c) => c.ready).length}/${cs.length}`,
          phase === 'Pending' ? 'ContainerCreating' : phase,
          '0',
          age(o),
        ];
      };
      break;
    case 'Deployment':
      header = ['NAME', 'READY', 'UP-TO-DATE', 'AVAILABLE', 'AGE'];
      row = (o) => {
        const s = status(o);
        const want = Number(spec(o).replicas ?? 1);
        return [
          o.metadata.name,
          `${Number(s.readyReplicas ?? 0)}/${want}`,
          String(Number(s.updatedReplicas ?? 0)),
          String(Number(s.availableReplicas ?? 0)),
          age(o),
        ];
      };
      break;
    case 'Namespace':
      header = ['NAME', 'STATUS', 'AGE'];
      row = (o) => [o.metadata.name, 'Active', age(o)];
      break;
    case 'Node':
      header = ['NAME', 'STATUS', 'ROLES', 'AGE', 'VERSION'];
      row = (o) => [o.metadata.name, 'Ready', 'control-plane', age(o), `${KUBE_VERSION}+k0s`];
      break;
    case 'Service':
      header = ['NAME', 'TYPE', 'CLUSTER-IP', 'EXTERNAL-IP', 'PORT(S)', 'AGE'];
      row = (o) => [
        o.metadata.name,
        typeof spec(o).type === 'string' ? (spec(o).type as string) : 'ClusterIP',
        typeof spec(o).clusterIP === 'string' ? (spec(o).clusterIP as string) : '<none>',
        '<none>',
        ((spec(o).ports ?? []) as { port: number; protocol?: string }[])
          .map((p) => `${p.port}/${p.protocol ?? 'TCP'}`)
          .join(',') || '<none>',
        age(o),
      ];
      break;
    default:
      header = ['NAME', 'AGE'];
      row = (o) => [o.metadata.name, age(o)];
  }
  if (allNs && info.namespaced) {
    header = ['NAMESPACE', ...header];
    const inner = row;
    row = (o) => [o.metadata.namespace ?? '', ...inner(o)];
  }
  if (showLabels) {
    header = [...header, 'LABELS'];
    const inner = row;
    row = (o) => [
      ...inner(o),
      Object.entries(o.metadata.labels ?? {})
        .map(([k, v]) => `${k}=${v}`)
        .join(',') || '<none>',
    ];
  }
  if (!noHeaders) rows.push(header);
  rows.push(...objects.map(row));
  const widths = header.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) =>
    r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]! + 3))).join(''),
  );
}
