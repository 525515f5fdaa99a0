/**
 * `kubectl get`: reads objects by name or by type (in one namespace or all of them), filters them by
 * label and field selectors, and prints them as jsonpath, JSON, YAML, names or kubectl's table
 * (./table.ts).
 */
import { stringify } from 'yaml';
import { abort } from '../lib/exit.js';
import {
  getObject,
  kindByName,
  listObjects,
  matchesSelector,
  resourceRef,
  typeRef,
  withStatus,
  type KindInfo,
  type KubeObject,
} from '../lib/kube-cluster.js';
import { executeJsonPath, JsonPathError } from '../lib/kube-jsonpath.js';
import { flagOn, flagValue } from '../lib/pflag.js';
import { readCluster, resourceArgs, type Ctx } from './context.js';
import { table } from './table.js';
import { out } from '../lib/tool-io.js';

export function get(ctx: Ctx, rest: string[]): void {
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
      else if (!flagOn(ctx.args, 'ignore-not-found')) {
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
  // kubectl prints nothing at all for names it did not find and was told to ignore.
  if (named && objects.length === 0 && flagOn(ctx.args, 'ignore-not-found')) return;
  // One object asked for by name prints as itself; anything else as a List.
  const single = refCount === 1 && objects.length === 1;
  const data = single
    ? objects[0]
    : { apiVersion: 'v1', items: objects, kind: 'List', metadata: { resourceVersion: '' } };
  if (output.startsWith('jsonpath=') || output.startsWith('jsonpath-as-json=')) {
    try {
      const text = executeJsonPath(output.slice(output.indexOf('=') + 1), data);
      if (text) out(text);
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
