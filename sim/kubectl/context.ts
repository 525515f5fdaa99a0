/**
 * What the verbs of the stand-in kubectl (sim/kubectl/main.ts) share: the command's context (`Ctx`) and the
 * output it collects (`Io`, printed by `finish`), reading and changing the simulated cluster in the sim
 * state folder, reading the manifests of `-f` arguments, and resolving `TYPE NAME...` / `TYPE/NAME...`
 * arguments to kinds.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { abort } from '../lib/exit.js';
import type { SimEnv } from '../lib/env.js';
import type { LabPoints } from '../lib/kube-client.js';
import {
  CLUSTER_STATE,
  getObject,
  initialCluster,
  kindByName,
  podsOf,
  resourceRef,
  type ClusterState,
  type KindInfo,
  type KubeObject,
} from '../lib/kube-cluster.js';
import type { ParsedArgs } from '../lib/pflag.js';
import { readState, updateState } from '../lib/state.js';
import { callerPath, err, exit, out, toolCall } from '../lib/tool-io.js';

export interface Io {
  out: string[];
  err: string[];
  code: number;
}

export interface Ctx {
  env: SimEnv;
  lab: LabPoints;
  args: ParsedArgs;
  io: Io;
  namespace: string;
}

/** Prints what the command collected and ends it with its exit code. */
export function finish(io: Io): void {
  if (io.out.length > 0) out(io.out.join('\n') + '\n');
  if (io.err.length > 0) err(io.err.join('\n') + '\n');
  if (io.code !== 0) exit(io.code);
}

export function readCluster(env: SimEnv): ClusterState {
  return readState(env.stateDir, CLUSTER_STATE, initialCluster());
}

export function changeCluster<R>(env: SimEnv, change: (state: ClusterState) => R): Promise<R> {
  return updateState(env.stateDir, CLUSTER_STATE, initialCluster(), change);
}

/**
 * The pod a `POD` or `TYPE/NAME` argument of exec and logs names: the pod, or one of a Deployment's, which
 * `pick` chooses among them (and fails with the verb's own message when it finds none).
 */
export function podOfTarget(
  ctx: Ctx,
  state: ClusterState,
  target: string,
  verb: string,
  pick: (pods: KubeObject[]) => KubeObject,
): KubeObject {
  const [type, name] = target.includes('/') ? (target.split('/') as [string, string]) : ['pod', target];
  const info = kindByName(type, state);
  if (!info) abort(`error: the server doesn't have a resource type "${type}"`);
  if (info.kind === 'Pod') {
    const pod = getObject(state, 'Pod', ctx.namespace, name)?.object;
    if (!pod) abort(`Error from server (NotFound): pods "${name}" not found`);
    return pod;
  }
  if (info.kind !== 'Deployment')
    abort(`error: cannot ${verb} ${info.kind}: selector for ${info.kind} not implemented`);
  if (!getObject(state, 'Deployment', ctx.namespace, name))
    abort(`Error from server (NotFound): ${resourceRef(info)} "${name}" not found`);
  return pick(podsOf(state, ctx.namespace, name));
}

/** The documents of `-f` arguments (files, folders, `-`), as kubectl reads them. */
export function readManifests(ctx: Ctx): { file: string; docs: unknown[] }[] {
  const files = ctx.args.flags.get('filename') ?? [];
  if (files.length === 0) abort('error: must specify one of -f and -k');
  const sources: { file: string; text: string }[] = [];
  for (const file of files) {
    if (file === '-') {
      sources.push({ file: 'STDIN', text: toolCall().stdin() });
      continue;
    }
    const local = callerPath(file);
    if (!existsSync(local)) abort(`error: the path "${file}" does not exist`);
    if (statSync(local).isDirectory()) {
      for (const entry of readdirSync(local).sort()) {
        if (/\.(ya?ml|json)$/.test(entry))
          sources.push({ file: path.join(file, entry), text: readFileSync(path.join(local, entry), 'utf8') });
      }
    } else {
      sources.push({ file, text: readFileSync(local, 'utf8') });
    }
  }
  return sources.map(({ file, text }) => {
    const docs: unknown[] = [];
    for (const doc of parseAllDocuments(text)) {
      if (doc.errors.length > 0) {
        const e = doc.errors[0]!;
        abort(
          `error: error parsing ${file}: error converting YAML to JSON: yaml: line ${e.linePos?.[0]?.line ?? 0}: ${e.message.split('\n')[0]}`,
        );
      }
      const value: unknown = doc.toJS();
      if (value === null || value === undefined) continue;
      const list = value as { kind?: string; items?: unknown[] };
      if (list.kind === 'List' && Array.isArray(list.items)) docs.push(...list.items);
      else docs.push(value);
    }
    return { file, docs };
  });
}

/** `TYPE NAME...` or `TYPE/NAME...` arguments. */
export function resourceArgs(
  ctx: Ctx,
  rest: string[],
  state: ClusterState,
): { info: KindInfo; name: string }[] {
  const refs: { info: KindInfo; name: string }[] = [];
  const lookup = (type: string) => {
    const info = kindByName(type, state);
    if (!info) abort(`error: the server doesn't have a resource type "${type}"`);
    return info;
  };
  if (rest[0]?.includes('/')) {
    for (const arg of rest) {
      const [type, name] = arg.split('/');
      if (!name) abort(`error: arguments in resource/name form must have a single resource and name`);
      refs.push({ info: lookup(type!), name });
    }
    return refs;
  }
  if (!rest[0]) return refs;
  const info = lookup(rest[0]);
  for (const name of rest.slice(1)) refs.push({ info, name });
  return refs;
}
