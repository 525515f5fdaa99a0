/**
 * `kubectl create namespace|configmap|secret generic`: builds the object from the arguments,
 * `--from-file` and `--from-literal`, and creates it in the simulated cluster or, with `--dry-run`, prints
 * it.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import { abort } from '../lib/exit.js';
import {
  applyManifest,
  getObject,
  kindInfo,
  resourceRef,
  typeRef,
  type KubeObject,
} from '../lib/kube-cluster.js';
import { flagValue } from '../lib/pflag.js';
import { changeCluster, type Ctx } from './context.js';
import { callerPath } from '../lib/tool-io.js';

export async function create(ctx: Ctx, rest: string[]): Promise<void> {
  const [what, ...more] = rest;
  let manifest: KubeObject;
  if (what === 'namespace' || what === 'ns') {
    if (!more[0]) abort('error: exactly one NAME is required, got 0');
    manifest = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: more[0] } };
  } else if (what === 'configmap' || what === 'cm' || what === 'secret') {
    const name = what === 'secret' ? more[1] : more[0];
    if (what === 'secret' && more[0] !== 'generic')
      abort(`error: the simulated kubectl creates only generic secrets`);
    if (!name) abort('error: exactly one NAME is required, got 0');
    const data: Record<string, string> = {};
    for (const spec of ctx.args.flags.get('from-file') ?? []) {
      const [key, source] = spec.includes('=')
        ? (spec.split(/=(.*)/s) as [string, string])
        : [undefined, spec];
      const local = callerPath(source);
      if (!existsSync(local)) abort(`error: error reading ${source}: no such file or directory`);
      if (statSync(local).isDirectory()) {
        for (const entry of readdirSync(local)) {
          if (statSync(path.join(local, entry)).isFile())
            data[entry] = readFileSync(path.join(local, entry), 'utf8');
        }
      } else {
        data[key ?? path.basename(source)] = readFileSync(local, 'utf8');
      }
    }
    for (const literal of ctx.args.flags.get('from-literal') ?? []) {
      const at = literal.indexOf('=');
      if (at <= 0) abort(`error: invalid literal source ${literal}, expected key=value`);
      data[literal.slice(0, at)] = literal.slice(at + 1);
    }
    manifest =
      what === 'secret'
        ? {
            apiVersion: 'v1',
            kind: 'Secret',
            metadata: { name, namespace: ctx.namespace },
            type: flagValue(ctx.args, 'type') ?? 'Opaque',
            data: Object.fromEntries(
              Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString('base64')]),
            ),
          }
        : { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: ctx.namespace }, data };
  } else {
    abort(
      what ? `error: unknown command "${what}" for "kubectl create"` : 'error: must specify one of -f and -k',
    );
  }
  const dryRun = flagValue(ctx.args, 'dry-run');
  if (dryRun && dryRun !== 'none') {
    const output = flagValue(ctx.args, 'output');
    if (output === 'yaml') ctx.io.out.push(stringify(manifest).trimEnd());
    else if (output === 'json') ctx.io.out.push(JSON.stringify(manifest, null, 4));
    else ctx.io.out.push(`${typeRef(kindInfo(manifest.kind)!)}/${manifest.metadata.name} created (dry run)`);
    return;
  }
  await changeCluster(ctx.env, (state) => {
    const info = kindInfo(manifest.kind)!;
    if (
      getObject(state, manifest.kind, info.namespaced ? ctx.namespace : undefined, manifest.metadata.name)
    ) {
      abort(
        `Error from server (AlreadyExists): ${resourceRef(info)} "${manifest.metadata.name}" already exists`,
      );
    }
    const result = applyManifest(state, manifest, { file: 'STDIN', namespace: ctx.namespace });
    if (result.error) abort(result.error);
    ctx.io.out.push(`${typeRef(info)}/${manifest.metadata.name} created`);
  });
}
