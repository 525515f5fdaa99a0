/**
 * `kubectl exec POD|TYPE/NAME -- curl ...`: finds the pod and container, then runs the curl the way the
 * mesh would: a curl in istiod's pod to its debug port answers from the mesh model's push status; any
 * other request is decided by the mesh model (sim/mesh/model.ts) and delivered by sim/lib/pod-curl.ts,
 * which runs the real curl against the lab's app (the real nginx the `vagrant` stand-in started on
 * loopback). Commands other than curl are refused.
 */
import path from 'node:path';
import { abort } from '../lib/exit.js';
import { curlOutput, parseCurl } from '../lib/curl-cli.js';
import { toMs } from '../../src/duration.js';
import { machineRunning } from '../lib/kube-client.js';
import { getObject, meshIstio, meshView, podRunning } from '../lib/kube-cluster.js';
import { flagOn, flagValue } from '../lib/pflag.js';
import { pushStatusOf, simulateRequest, type MeshObject } from '../mesh/model.js';
import { deliver, type ObjectLookup } from '../lib/pod-curl.js';
import { podOfTarget, readCluster, type Ctx } from './context.js';
import { err, exit, out } from '../lib/tool-io.js';

export async function exec(ctx: Ctx, rest: string[]): Promise<void> {
  const command = ctx.args.rest ?? [];
  const target = rest[0];
  if (!target) abort('error: pod, type/name or --filename must be specified');
  if (command.length === 0) abort('error: you must specify at least one command for the container');
  const state = readCluster(ctx.env);
  const pod = podOfTarget(ctx, state, target, 'attach to', (pods) => {
    const running = pods.find((p) => podRunning(state, p));
    if (!running) abort(`error: cannot exec into a container in a completed pod; current phase is Pending`);
    return running;
  });
  const containers = (((pod.spec as Record<string, unknown>)?.containers ?? []) as { name: string }[]).map(
    (c) => c.name,
  );
  let container = flagValue(ctx.args, 'container');
  if (!container) {
    container = containers[0]!;
    if (containers.length > 1 && !flagOn(ctx.args, 'quiet')) {
      err(
        `Defaulted container "${container}" out of: ${containers.join(', ')}${containers.includes('istio-proxy') ? ', istio-init (init)' : ''}\n`,
      );
    }
  }
  if (!containers.includes(container) || !podRunning(state, pod)) {
    abort(`error: unable to upgrade connection: container not found ("${container}")`);
  }
  const program = path.basename(command[0]!);
  if (program !== 'curl') {
    err(
      `error: the simulated cluster runs only curl inside containers, not "${command[0]}"\ncommand terminated with exit code 126\n`,
    );
    exit(126);
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
      proxy: proxy ? { ip: proxy.ip, listeners: proxy.listeners } : undefined,
      app: ctx.lab.app,
    },
    source: {
      pod: pod.metadata.name,
      namespace: pod.metadata.namespace ?? 'default',
      labels: pod.metadata.labels ?? {},
      sidecar,
    },
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
  if (stdout) out(stdout);
  if (stderr) err(stderr);
  if (exitCode !== 0) err(`command terminated with exit code ${exitCode}\n`);
  exit(exitCode);
}
