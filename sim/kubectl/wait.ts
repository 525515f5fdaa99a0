/**
 * `kubectl wait --for=condition=...`: polls the simulated cluster, up to `--timeout`, until nodes and
 * pods are Ready or deployments Available, for named objects or those of a type matching `-l` / `--all`.
 */
import { abort } from '../lib/exit.js';
import { sleep } from '../lib/env.js';
import { goDuration } from '../lib/kube-client.js';
import {
  getObject,
  kindByName,
  listObjects,
  matchesSelector,
  podRunning,
  resourceRef,
  typeRef,
  withStatus,
  type KindInfo,
  type KubeObject,
} from '../lib/kube-cluster.js';
import { flagOn, flagValue } from '../lib/pflag.js';
import { readCluster, resourceArgs, type Ctx } from './context.js';

export async function wait(ctx: Ctx, rest: string[]): Promise<void> {
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
