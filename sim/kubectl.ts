/**
 * Stand-in `kubectl` of the simulated lab: the commands the lab's actions run (apply, delete, get,
 * label, rollout status/restart, exec, create, wait, version, cluster-info) with kubectl's flags, output
 * and error messages, against the simulated cluster in the sim state folder. `exec ... -- curl` is
 * decided by the mesh model (sim/mesh/model.ts); requests to the lab's app run the real curl against the
 * real nginx the `vagrant` stand-in started on loopback.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import { simulateCall } from './lib/call.js';
import { abort, CliExit } from './lib/exit.js';
import { curlOutput, parseCurl } from './lib/curl-cli.js';
import { toMs } from '../src/duration.js';
import { fail as exitWith, simEnv, sleep, type SimEnv } from './lib/env.js';
import { clusterProblem, goDuration, labPoints, machineRunning, type LabPoints } from './lib/kube-client.js';
import {
  applyManifest,
  canonical,
  CLUSTER_STATE,
  deleteObject,
  getObject,
  initialCluster,
  kindByName,
  kindInfo,
  KUBE_VERSION,
  listObjects,
  matchesSelector,
  meshIstio,
  meshView,
  podRunning,
  podsOf,
  reconcilePods,
  resourceRef,
  typeRef,
  withStatus,
  type ClusterState,
  type KindInfo,
  type KubeObject,
} from './lib/kube-cluster.js';
import { executeJsonPath, JsonPathError } from './lib/kube-jsonpath.js';
import { flagOn, flagValue, parseArgs, UsageError, type FlagSpec, type ParsedArgs } from './lib/pflag.js';
import { readState, updateState } from './lib/state.js';
import { pushStatusOf, simulateRequest, type MeshObject } from './mesh/model.js';
import { deliver, type ObjectLookup } from './lib/pod-curl.js';

const FLAGS: Record<string, FlagSpec> = {
  kubeconfig: { value: true },
  context: { value: true },
  namespace: { value: true, short: 'n' },
  'request-timeout': { value: true },
  v: { value: true, short: 'v' },
  filename: { value: true, short: 'f' },
  recursive: { value: false, short: 'R' },
  'ignore-not-found': { value: false },
  'dry-run': { value: true, optional: 'unchanged' },
  validate: { value: true, optional: 'strict' },
  wait: { value: false },
  output: { value: true, short: 'o' },
  selector: { value: true, short: 'l' },
  'field-selector': { value: true },
  'all-namespaces': { value: false, short: 'A' },
  'no-headers': { value: false },
  'show-labels': { value: false },
  overwrite: { value: false },
  list: { value: false },
  all: { value: false },
  timeout: { value: true },
  watch: { value: false, short: 'w' },
  container: { value: true, short: 'c' },
  stdin: { value: false, short: 'i' },
  tty: { value: false, short: 't' },
  quiet: { value: false, short: 'q' },
  for: { value: true },
  'from-file': { value: true },
  'from-literal': { value: true },
  type: { value: true },
  client: { value: false },
  force: { value: false },
  'grace-period': { value: true },
  now: { value: false },
};

interface Io {
  out: string[];
  err: string[];
  code: number;
}

async function main(): Promise<void> {
  const env = simEnv();
  const argv = process.argv.slice(2);
  await simulateCall(env, 'kubectl', argv);
  let args: ParsedArgs;
  try {
    args = parseArgs(argv, FLAGS);
  } catch (err) {
    if (err instanceof UsageError) abort(`error: ${err.message}\nSee 'kubectl --help' for usage.`);
    throw err;
  }
  const [command, ...rest] = args.positionals;
  if (!command) {
    process.stdout.write(
      'kubectl controls the Kubernetes cluster manager.\n\nUsage:\n  kubectl [flags] [options]\n',
    );
    return;
  }
  const lab = labPoints(env.lab);
  if (command === 'version' && flagOn(args, 'client')) {
    process.stdout.write(`Client Version: ${KUBE_VERSION}\nKustomize Version: v5.6.0\n`);
    return;
  }
  const known = [
    'apply',
    'delete',
    'get',
    'label',
    'rollout',
    'exec',
    'create',
    'wait',
    'version',
    'cluster-info',
  ];
  if (!known.includes(command))
    abort(`error: unknown command "${command}" for "kubectl"\nRun 'kubectl --help' for usage.`);
  const problem = clusterProblem(env.stateDir, lab, flagValue(args, 'kubeconfig'));
  if (problem)
    abort(
      problem.startsWith('The connection') || problem.startsWith('Unable') ? problem : `error: ${problem}`,
    );

  const io: Io = { out: [], err: [], code: 0 };
  const ctx = { env, lab, args, io, namespace: flagValue(args, 'namespace') ?? 'default' };
  switch (command) {
    case 'apply':
      await apply(ctx);
      break;
    case 'delete':
      await remove(ctx, rest);
      break;
    case 'get':
      get(ctx, rest);
      break;
    case 'label':
      await label(ctx, rest);
      break;
    case 'rollout':
      await rollout(ctx, rest);
      break;
    case 'exec':
      await exec(ctx, rest);
      break;
    case 'create':
      await create(ctx, rest);
      break;
    case 'wait':
      await wait(ctx, rest);
      break;
    case 'version':
      io.out.push(
        `Client Version: ${KUBE_VERSION}`,
        'Kustomize Version: v5.6.0',
        `Server Version: ${KUBE_VERSION}+k0s`,
      );
      break;
    case 'cluster-info':
      io.out.push(
        `Kubernetes control plane is running at ${lab.apiServer}`,
        `CoreDNS is running at ${lab.apiServer}/api/v1/namespaces/kube-system/services/kube-dns:dns/proxy`,
        '',
        "To further debug and diagnose cluster problems, use 'kubectl cluster-info dump'.",
      );
      break;
  }
  finish(io);
}

interface Ctx {
  env: SimEnv;
  lab: LabPoints;
  args: ParsedArgs;
  io: Io;
  namespace: string;
}

function finish(io: Io): never {
  if (io.out.length > 0) process.stdout.write(io.out.join('\n') + '\n');
  if (io.err.length > 0) process.stderr.write(io.err.join('\n') + '\n');
  process.exit(io.code);
}

function readCluster(env: SimEnv): ClusterState {
  return readState(env.stateDir, CLUSTER_STATE, initialCluster());
}

function changeCluster<R>(env: SimEnv, change: (state: ClusterState) => R): Promise<R> {
  return updateState(env.stateDir, CLUSTER_STATE, initialCluster(), change);
}

/** The documents of `-f` arguments (files, folders, `-`), as kubectl reads them. */
function readManifests(ctx: Ctx): { file: string; docs: unknown[] }[] {
  const files = ctx.args.flags.get('filename') ?? [];
  if (files.length === 0) abort('error: must specify one of -f and -k');
  const sources: { file: string; text: string }[] = [];
  for (const file of files) {
    if (file === '-') {
      sources.push({ file: 'STDIN', text: readFileSync(0, 'utf8') });
      continue;
    }
    if (!existsSync(file)) abort(`error: the path "${file}" does not exist`);
    if (statSync(file).isDirectory()) {
      for (const entry of readdirSync(file).sort()) {
        if (/\.(ya?ml|json)$/.test(entry))
          sources.push({ file: path.join(file, entry), text: readFileSync(path.join(file, entry), 'utf8') });
      }
    } else {
      sources.push({ file, text: readFileSync(file, 'utf8') });
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

async function apply(ctx: Ctx): Promise<void> {
  const sources = readManifests(ctx);
  const dryRun = flagValue(ctx.args, 'dry-run');
  const suffix = dryRun && dryRun !== 'none' ? ` (${dryRun === 'server' ? 'server ' : ''}dry run)` : '';
  const run = (state: ClusterState) => {
    for (const { file, docs } of sources) {
      for (const doc of docs) {
        const result = applyManifest(state, doc, { file, namespace: flagValue(ctx.args, 'namespace') });
        if (result.error) {
          ctx.io.err.push(result.error);
          ctx.io.code = 1;
        } else {
          ctx.io.out.push(`${typeRef(result.info!)}/${result.name} ${result.verb}${suffix}`);
        }
      }
    }
  };
  if (suffix) run(readCluster(ctx.env));
  else await changeCluster(ctx.env, run);
}

async function remove(ctx: Ctx, rest: string[]): Promise<void> {
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

function deleteOne(
  ctx: Ctx,
  state: ClusterState,
  info: KindInfo,
  ns: string | undefined,
  name: string,
  ignore: boolean,
  file?: string,
) {
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

/** `TYPE NAME...` or `TYPE/NAME...` arguments. */
function resourceArgs(ctx: Ctx, rest: string[], state: ClusterState): { info: KindInfo; name: string }[] {
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

function get(ctx: Ctx, rest: string[]): void {
  const state = readCluster(ctx.env);
  if (rest.length === 0) {
    abort(
      'You must specify the type of resource to get. Use "kubectl api-resources" for a complete list of supported resources.\n\nerror: Required resource not specified.',
    );
  }
  const allNs = flagOn(ctx.args, 'all-namespaces');
  const named = rest[0]!.includes('/') || rest.length > 1;
  let info: KindInfo;
  let objects: KubeObject[] = [];
  let refCount = 0;
  if (named) {
    const refs = resourceArgs(ctx, rest, state);
    refCount = refs.length;
    info = refs[0]!.info;
    for (const ref of refs) {
      const found = getObject(
        state,
        ref.info.kind,
        ref.info.namespaced ? ctx.namespace : undefined,
        ref.name,
      );
      if (found) objects.push(withStatus(state, found.object));
      else {
        ctx.io.err.push(`Error from server (NotFound): ${resourceRef(ref.info)} "${ref.name}" not found`);
        ctx.io.code = 1;
      }
    }
  } else {
    const found = kindByName(rest[0]!, state);
    if (!found) abort(`error: the server doesn't have a resource type "${rest[0]}"`);
    info = found;
    objects = listObjects(state, info.kind, info.namespaced && !allNs ? ctx.namespace : undefined).map((s) =>
      withStatus(state, s.object),
    );
  }
  const selector = flagValue(ctx.args, 'selector');
  if (selector) objects = objects.filter((o) => matchesSelector(o.metadata.labels, selector));
  const fieldSelector = flagValue(ctx.args, 'field-selector');
  if (fieldSelector) objects = objects.filter((o) => matchesFields(o, info, fieldSelector, selector ?? ''));
  const output = flagValue(ctx.args, 'output') ?? '';
  // One object asked for by name prints as itself; anything else as a List.
  const single = refCount === 1 && objects.length === 1;
  const data = single
    ? objects[0]
    : { apiVersion: 'v1', items: objects, kind: 'List', metadata: { resourceVersion: '' } };
  if (output.startsWith('jsonpath=') || output.startsWith('jsonpath-as-json=')) {
    try {
      const text = executeJsonPath(output.slice(output.indexOf('=') + 1), data);
      if (text) process.stdout.write(text);
    } catch (err) {
      if (err instanceof JsonPathError) abort(`error: ${err.message}`);
      throw err;
    }
  } else if (output === 'json') {
    ctx.io.out.push(JSON.stringify(data, null, 4));
  } else if (output === 'yaml') {
    ctx.io.out.push(stringify(data).trimEnd());
  } else if (output === 'name') {
    ctx.io.out.push(...objects.map((o) => `${typeRef(info)}/${o.metadata.name}`));
  } else if (output === '' || output === 'wide') {
    if (objects.length === 0 && ctx.io.code === 0) {
      ctx.io.err.push(
        info.namespaced && !allNs
          ? `No resources found in ${ctx.namespace} namespace.`
          : 'No resources found',
      );
    } else if (objects.length > 0) {
      ctx.io.out.push(
        ...table(info, objects, allNs, flagOn(ctx.args, 'no-headers'), flagOn(ctx.args, 'show-labels')),
      );
    }
  } else {
    abort(
      `error: unable to match a printer suitable for the output format "${output}", allowed formats are: json,jsonpath,jsonpath-as-json,name,wide,yaml`,
    );
  }
}

function matchesFields(object: KubeObject, info: KindInfo, selector: string, labelSelector: string): boolean {
  const supported = [
    'metadata.name',
    'metadata.namespace',
    ...(info.kind === 'Pod' ? ['status.phase', 'spec.nodeName'] : []),
  ];
  return selector.split(',').every((term) => {
    const match = /^([^!=]+)(!=|==|=)(.*)$/.exec(term.trim());
    if (!match) abort(`error: invalid field selector: "${term}"`);
    const [, key, op, want] = match;
    if (!supported.includes(key!)) {
      abort(
        `Error from server (BadRequest): Unable to find "${info.group ? `${info.group}/` : '/'}${info.versions[0]}, Resource=${info.plural}" ` +
          `that match label selector "${labelSelector}", field selector "${selector}": field label not supported: ${key}`,
      );
    }
    const value = key!
      .split('.')
      .reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], object);
    return op === '!=' ? value !== want : value === want;
  });
}

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

function table(
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

const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const LABEL_KEY =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

async function label(ctx: Ctx, rest: string[]): Promise<void> {
  const isChange = (arg: string) => arg.includes('=') || (arg.endsWith('-') && !arg.includes('/'));
  const changes = rest.filter(isChange);
  const targets = rest.filter((a) => !isChange(a));
  if (targets.length === 0) abort('error: resource(s) were provided, but no name was specified');
  if (changes.length === 0 && !flagOn(ctx.args, 'list'))
    abort('error: at least one label update is required');
  const set: Record<string, string> = {};
  const unset: string[] = [];
  for (const change of changes) {
    if (change.endsWith('-') && !change.includes('=')) {
      unset.push(change.slice(0, -1));
      continue;
    }
    const [key, ...valueParts] = change.split('=');
    const value = valueParts.join('=');
    if (!LABEL_KEY.test(key!) || key!.length > 317) {
      abort(`error: invalid label spec: ${change}`);
    }
    if (!LABEL_VALUE.test(value) || value.length > 63) {
      abort(
        `error: invalid label value: "${change}": a valid label must be an empty string or consist of alphanumeric characters, ` +
          `'-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', ` +
          `regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')`,
      );
    }
    set[key!] = value;
  }
  const refs = resourceArgs(ctx, targets, readCluster(ctx.env));
  await changeCluster(ctx.env, (state) => {
    for (const { info, name } of refs) {
      const found = getObject(state, info.kind, info.namespaced ? ctx.namespace : undefined, name);
      if (!found) {
        ctx.io.err.push(`Error from server (NotFound): ${resourceRef(info)} "${name}" not found`);
        ctx.io.code = 1;
        continue;
      }
      const labels = { ...(found.object.metadata.labels ?? {}) };
      if (flagOn(ctx.args, 'list')) {
        ctx.io.out.push(...Object.entries(labels).map(([k, v]) => `${k}=${v}`));
        continue;
      }
      const before = canonical(labels);
      for (const [key, value] of Object.entries(set)) {
        if (key in labels && labels[key] !== value && !flagOn(ctx.args, 'overwrite')) {
          abort(`error: '${key}' already has a value (${labels[key]}), and --overwrite is false`);
        }
        labels[key] = value;
      }
      for (const key of unset) delete labels[key];
      const changed = canonical(labels) !== before;
      if (changed) {
        state.seq += 1;
        // The API server omits an empty label map.
        if (Object.keys(labels).length > 0) found.object.metadata.labels = labels;
        else delete found.object.metadata.labels;
        found.object.metadata.resourceVersion = String(state.seq);
      }
      ctx.io.out.push(`${typeRef(info)}/${name} ${changed ? 'labeled' : 'not labeled'}`);
    }
  });
}

async function rollout(ctx: Ctx, rest: string[]): Promise<void> {
  const [sub, ...targets] = rest;
  if (sub !== 'status' && sub !== 'restart') {
    abort(
      sub
        ? `error: unknown command "${sub}" for "kubectl rollout"`
        : 'error: Required resource not specified.',
    );
  }
  const refs = resourceArgs(ctx, targets, readCluster(ctx.env));
  if (refs.length === 0) abort('error: required resource not specified');
  for (const { info } of refs) {
    if (info.kind !== 'Deployment') abort(`error: no status viewer has been implemented for ${info.kind}`);
  }
  if (sub === 'restart') {
    await changeCluster(ctx.env, (state) => {
      for (const { info, name } of refs) {
        const found = getObject(state, 'Deployment', ctx.namespace, name);
        if (!found) abort(`Error from server (NotFound): ${resourceRef(info)} "${name}" not found`);
        const template = ((found.object.spec as Record<string, unknown>).template ??= {}) as {
          metadata?: { annotations?: Record<string, string> };
        };
        template.metadata = { ...(template.metadata ?? {}) };
        template.metadata.annotations = {
          ...(template.metadata.annotations ?? {}),
          'kubectl.kubernetes.io/restartedAt': new Date().toISOString(),
        };
        reconcilePods(state, found.object);
        ctx.io.out.push(`${typeRef(info)}/${name} restarted`);
      }
    });
    return;
  }
  const timeoutText = flagValue(ctx.args, 'timeout') ?? '0';
  const timeout = goDuration(timeoutText);
  if (timeout === undefined)
    abort(
      `error: invalid argument "${timeoutText}" for "--timeout" flag: time: invalid duration "${timeoutText}"`,
    );
  const deadline = timeout === 0 ? Infinity : Date.now() + timeout;
  for (const { info, name } of refs) {
    let waiting = false;
    for (;;) {
      const state = readCluster(ctx.env);
      const found = getObject(state, 'Deployment', ctx.namespace, name);
      if (!found) abort(`Error from server (NotFound): ${resourceRef(info)} "${name}" not found`);
      const want = Number((found.object.spec as Record<string, unknown>)?.replicas ?? 1);
      const ready = podsOf(state, ctx.namespace, name).filter((p) => podRunning(state, p)).length;
      if (ready >= want) break;
      if (!waiting) {
        process.stdout.write(
          `Waiting for deployment "${name}" rollout to finish: ${ready} of ${want} updated replicas are available...\n`,
        );
        waiting = true;
      }
      if (Date.now() > deadline) abort('error: timed out waiting for the condition');
      await sleep(100);
    }
    ctx.io.out.push(`deployment "${name}" successfully rolled out`);
  }
}

async function wait(ctx: Ctx, rest: string[]): Promise<void> {
  const condition = flagValue(ctx.args, 'for') ?? '';
  const match = /^condition=(\w+)(?:=(\w+))?$/.exec(condition);
  if (!match) abort(`error: unrecognized condition: "${condition}"`);
  const timeout = goDuration(flagValue(ctx.args, 'timeout') ?? '30s') ?? 30_000;
  const deadline = Date.now() + timeout;
  const want = match[1]!.toLowerCase();
  for (;;) {
    const state = readCluster(ctx.env);
    let targets: { info: KindInfo; object: KubeObject }[];
    if (rest.length === 1 && !rest[0]!.includes('/')) {
      const info = kindByName(rest[0]!, state);
      if (!info) abort(`error: the server doesn't have a resource type "${rest[0]}"`);
      const selector = flagValue(ctx.args, 'selector');
      if (!flagOn(ctx.args, 'all') && !selector)
        abort('error: resource(s) were provided, but no name was specified');
      targets = listObjects(state, info.kind, info.namespaced ? ctx.namespace : undefined)
        .map((s) => ({ info, object: s.object }))
        .filter((t) => !selector || matchesSelector(t.object.metadata.labels, selector));
      if (targets.length === 0) abort(`error: no matching resources found`);
    } else {
      targets = resourceArgs(ctx, rest, state).map(({ info, name }) => {
        const found = getObject(state, info.kind, info.namespaced ? ctx.namespace : undefined, name);
        if (!found) abort(`Error from server (NotFound): ${resourceRef(info)} "${name}" not found`);
        return { info, object: found.object };
      });
    }
    const met = (t: { info: KindInfo; object: KubeObject }) => {
      if (t.info.kind === 'Node') return want === 'ready';
      if (t.info.kind === 'Pod') return want === 'ready' && podRunning(state, t.object);
      if (t.info.kind === 'Deployment') {
        const status = withStatus(state, t.object).status as { availableReplicas: number };
        return (
          want === 'available' &&
          status.availableReplicas >= Number((t.object.spec as { replicas?: number }).replicas ?? 1)
        );
      }
      return false;
    };
    if (targets.every(met)) {
      ctx.io.out.push(...targets.map((t) => `${typeRef(t.info)}/${t.object.metadata.name} condition met`));
      return;
    }
    if (Date.now() > deadline) {
      const pending = targets.find((t) => !met(t))!;
      abort(
        `error: timed out waiting for the condition on ${resourceRef(pending.info)}/${pending.object.metadata.name}`,
      );
    }
    await sleep(100);
  }
}

async function create(ctx: Ctx, rest: string[]): Promise<void> {
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
      if (!existsSync(source)) abort(`error: error reading ${source}: no such file or directory`);
      if (statSync(source).isDirectory()) {
        for (const entry of readdirSync(source)) {
          if (statSync(path.join(source, entry)).isFile())
            data[entry] = readFileSync(path.join(source, entry), 'utf8');
        }
      } else {
        data[key ?? path.basename(source)] = readFileSync(source, 'utf8');
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

async function exec(ctx: Ctx, rest: string[]): Promise<void> {
  const command = ctx.args.rest ?? [];
  const target = rest[0];
  if (!target) abort('error: pod, type/name or --filename must be specified');
  if (command.length === 0) abort('error: you must specify at least one command for the container');
  const state = readCluster(ctx.env);
  let pod: KubeObject | undefined;
  if (target.includes('/')) {
    const [type, name] = target.split('/') as [string, string];
    const info = kindByName(type, state);
    if (!info) abort(`error: the server doesn't have a resource type "${type}"`);
    if (info.kind === 'Pod') pod = getObject(state, 'Pod', ctx.namespace, name)?.object;
    else if (info.kind === 'Deployment') {
      if (!getObject(state, 'Deployment', ctx.namespace, name))
        abort(`Error from server (NotFound): ${resourceRef(info)} "${name}" not found`);
      pod = podsOf(state, ctx.namespace, name).find((p) => podRunning(state, p));
      if (!pod) abort(`error: cannot exec into a container in a completed pod; current phase is Pending`);
    } else abort(`error: cannot attach to ${info.kind}: selector for ${info.kind} not implemented`);
    if (!pod) abort(`Error from server (NotFound): pods "${name}" not found`);
  } else {
    pod = getObject(state, 'Pod', ctx.namespace, target)?.object;
    if (!pod) abort(`Error from server (NotFound): pods "${target}" not found`);
  }
  const containers = (((pod.spec as Record<string, unknown>)?.containers ?? []) as { name: string }[]).map(
    (c) => c.name,
  );
  let container = flagValue(ctx.args, 'container');
  if (!container) {
    container = containers[0]!;
    if (containers.length > 1 && !flagOn(ctx.args, 'quiet')) {
      process.stderr.write(
        `Defaulted container "${container}" out of: ${containers.join(', ')}${containers.includes('istio-proxy') ? ', istio-init (init)' : ''}\n`,
      );
    }
  }
  if (!containers.includes(container) || !podRunning(state, pod)) {
    abort(`error: unable to upgrade connection: container not found ("${container}")`);
  }
  const program = path.basename(command[0]!);
  if (program !== 'curl') {
    process.stderr.write(
      `error: the simulated cluster runs only curl inside containers, not "${command[0]}"\ncommand terminated with exit code 126\n`,
    );
    process.exit(126);
  }
  const parsed = parseCurl(command.slice(1));
  if ('exitCode' in parsed) return terminate(ctx, '', parsed.stderr, parsed.exitCode);
  const call = parsed.call;
  const resources: MeshObject[] = meshView(state, Date.now(), toMs(ctx.env.sim.configDelay));

  const isIstiod = pod.metadata.labels?.app === 'istiod';
  if (isIstiod && ['localhost', '127.0.0.1'].includes(call.url.hostname) && call.url.port === '15014') {
    if (call.url.pathname === '/debug/push_status') {
      const proxies = Object.values(state.objects)
        .map((s) => s.object)
        .filter(
          (o) =>
            o.kind === 'Pod' &&
            ((o.spec as { containers?: { name: string }[] })?.containers ?? []).some(
              (c) => c.name === 'istio-proxy',
            ),
        )
        .filter((o) => !String(o.metadata.namespace).startsWith('istio-system'))
        .map((o) => ({ pod: o.metadata.name, namespace: o.metadata.namespace ?? 'default' }));
      const body = JSON.stringify(pushStatusOf(resources, proxies), null, 2) + '\n';
      return terminate(ctx, call.output === '/dev/null' ? '' : body, '', 0);
    }
    const out = curlOutput(call, { exitCode: 0, httpCode: 404, remoteIp: '127.0.0.1' });
    return terminate(ctx, out.stdout, out.stderr, out.exitCode);
  }

  const sidecar = containers.includes('istio-proxy') && container !== 'istio-proxy';
  const proxy =
    ctx.lab.proxy && machineRunning(ctx.env.stateDir, ctx.lab.proxy.name) ? ctx.lab.proxy : undefined;
  const outcome = simulateRequest({
    resources,
    istio: meshIstio(state),
    lab: {
      nodeIp: ctx.lab.kubernetes?.ip ?? '10.0.2.15',
      proxy: proxy ? { ip: proxy.ip, port: proxy.port } : undefined,
      app: ctx.lab.app ? { ip: ctx.lab.app.ip, port: ctx.lab.app.port } : undefined,
    },
    source: { pod: pod.metadata.name, namespace: pod.metadata.namespace ?? 'default', sidecar },
    request: { url: call.url.href, insecure: call.insecure },
    now: new Date(),
    sourcePort: 32_768 + Math.floor(Math.random() * 28_231),
  });
  const out = await deliver(outcome, {
    simState: ctx.env.stateDir,
    lab: ctx.lab,
    pod,
    container,
    call,
    sidecar,
    lookup: (kind, namespace, name) =>
      getObject(state, kind, namespace, name)?.object as ReturnType<ObjectLookup>,
  });
  return terminate(ctx, out.stdout, out.stderr, out.exitCode);
}

/** Prints what the command in the container printed; kubectl reports a non-zero exit and passes it on. */
function terminate(_ctx: Ctx, stdout: string, stderr: string, exitCode: number): never {
  if (stdout) process.stdout.write(stdout);
  if (stderr) process.stderr.write(stderr);
  if (exitCode !== 0) process.stderr.write(`command terminated with exit code ${exitCode}\n`);
  process.exit(exitCode);
}

main().catch((err: unknown) =>
  err instanceof CliExit
    ? exitWith(err.message, err.code)
    : exitWith(`error: ${err instanceof Error ? err.message : String(err)}`),
);
