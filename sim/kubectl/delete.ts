/**
 * `kubectl delete`: deletes the objects of `-f` manifests, of `TYPE -l SELECTOR` (or `--all`), or named
 * as `TYPE NAME...` / `TYPE/NAME...`, with kubectl's messages for each deletion and each missing object.
 */
import { abort } from '../lib/exit.js';
import {
  deleteObject,
  kindByName,
  kindInfo,
  listObjects,
  matchesSelector,
  resourceRef,
  typeRef,
  type ClusterState,
  type KindInfo,
  type KubeObject,
} from '../lib/kube-cluster.js';
import { flagOn, flagValue } from '../lib/pflag.js';
import { changeCluster, readCluster, readManifests, resourceArgs, type Ctx } from './context.js';

export async function remove(ctx: Ctx, rest: string[]): Promise<void> {
  const ignore = flagOn(ctx.args, 'ignore-not-found');
  if (ctx.args.flags.has('filename')) {
    const sources = readManifests(ctx);
    await changeCluster(ctx.env, (state) => {
      for (const { file, docs } of sources) {
        for (const doc of docs as KubeObject[]) {
          const apiVersion = String(doc?.apiVersion ?? '');
          const group = apiVersion.includes('/') ? apiVersion.split('/')[0] : '';
          const info = kindInfo(String(doc?.kind ?? ''));
          if (!info || info.group !== group || (info.istio && !state.istio)) {
            ctx.io.err.push(
              `error: resource mapping not found for name: "${doc?.metadata?.name ?? ''}" namespace: "" from "${file}": ` +
                `no matches for kind "${String(doc?.kind)}" in version "${apiVersion}"\nensure CRDs are installed first`,
            );
            ctx.io.code = 1;
            continue;
          }
          const ns = info.namespaced
            ? (doc.metadata?.namespace ?? flagValue(ctx.args, 'namespace') ?? 'default')
            : undefined;
          deleteOne(ctx, state, info, ns, doc.metadata?.name ?? '', ignore, file);
        }
      }
    });
    return;
  }
  const selector = flagValue(ctx.args, 'selector');
  if (selector !== undefined || flagOn(ctx.args, 'all')) {
    // `TYPE[,TYPE...] -l SELECTOR` (or --all): every match of each type, in one namespace or all of them.
    if (!rest[0] || rest.length > 1) abort('error: name cannot be provided when a selector is specified');
    const allNs = flagOn(ctx.args, 'all-namespaces');
    await changeCluster(ctx.env, (state) => {
      const types = rest[0]!.split(',').map((type) => {
        const info = kindByName(type, state);
        if (!info) abort(`error: the server doesn't have a resource type "${type}"`);
        return info;
      });
      let deleted = 0;
      for (const info of types) {
        const namespace = info.namespaced && !allNs ? ctx.namespace : undefined;
        for (const { object } of listObjects(state, info.kind, namespace)) {
          if (selector && !matchesSelector(object.metadata.labels, selector)) continue;
          deleteOne(ctx, state, info, object.metadata.namespace, object.metadata.name, ignore);
          deleted++;
        }
      }
      if (deleted === 0 && !ignore) ctx.io.err.push('No resources found');
    });
    return;
  }
  const refs = resourceArgs(ctx, rest, readCluster(ctx.env));
  if (refs.length === 0) abort('error: resource(s) were provided, but no name was specified');
  await changeCluster(ctx.env, (state) => {
    for (const { info, name } of refs)
      deleteOne(ctx, state, info, info.namespaced ? ctx.namespace : undefined, name, ignore);
  });
}

/** Namespaces the API server never deletes. */
const UNDELETABLE_NAMESPACES = ['default', 'kube-system', 'kube-public'];

function deleteOne(
  ctx: Ctx,
  state: ClusterState,
  info: KindInfo,
  ns: string | undefined,
  name: string,
  ignore: boolean,
  file?: string,
) {
  if (info.kind === 'Namespace' && UNDELETABLE_NAMESPACES.includes(name)) {
    // The API server's NamespaceLifecycle admission.
    ctx.io.err.push(
      `Error from server (Forbidden): ${file ? `error when deleting "${file}": ` : ''}namespaces "${name}" is forbidden: this namespace may not be deleted`,
    );
    ctx.io.code = 1;
    return;
  }
  if (deleteObject(state, info.kind, ns, name)) {
    // kubectl 1.33 and later name the namespace.
    ctx.io.out.push(`${typeRef(info)} "${name}" deleted${ns ? ` from ${ns} namespace` : ''}`);
  } else if (!ignore) {
    ctx.io.err.push(
      `Error from server (NotFound): ${file ? `error when deleting "${file}": ` : ''}${resourceRef(info)} "${name}" not found`,
    );
    ctx.io.code = 1;
  }
}
