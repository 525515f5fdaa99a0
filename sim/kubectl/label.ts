/**
 * `kubectl label`: sets (`key=value`), removes (`key-`) or lists (`--list`) the labels of named objects,
 * validating keys and values as the API server does and refusing to change a value without
 * `--overwrite`.
 */
import { abort } from '../lib/exit.js';
import { canonical, getObject, resourceRef, typeRef } from '../lib/kube-cluster.js';
import { flagOn } from '../lib/pflag.js';
import { changeCluster, readCluster, resourceArgs, type Ctx } from './context.js';

const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const LABEL_KEY =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

export async function label(ctx: Ctx, rest: string[]): Promise<void> {
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
