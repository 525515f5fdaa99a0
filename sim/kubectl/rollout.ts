/**
 * `kubectl rollout status|restart` for deployments: `restart` stamps the pod template and recreates the
 * pods; `status` waits, up to `--timeout`, until each deployment has its replicas running.
 */
import { abort } from '../lib/exit.js';
import { sleep } from '../lib/env.js';
import { goDuration } from '../lib/kube-client.js';
import { getObject, podRunning, podsOf, reconcilePods, resourceRef, typeRef } from '../lib/kube-cluster.js';
import { flagValue } from '../lib/pflag.js';
import { changeCluster, readCluster, resourceArgs, type Ctx } from './context.js';
import { out } from '../lib/tool-io.js';

export async function rollout(ctx: Ctx, rest: string[]): Promise<void> {
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
        out(
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
