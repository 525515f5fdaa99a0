/**
 * Stand-in `kubectl` of the simulated lab: the commands the lab's actions run (apply, delete, get,
 * label, rollout status/restart, exec, logs, create, wait, version, cluster-info) with kubectl's flags, output
 * and error messages, against the simulated cluster in the sim state folder. `exec ... -- curl` is
 * decided by the mesh model (sim/mesh/model.ts); requests to the lab's app run the real curl against the
 * real nginx the `vagrant` stand-in started on loopback. This file holds the flags, the checks every
 * command makes and the dispatch; the verbs live beside it, one file each, with what they share
 * (context.ts). It runs as a process of its own (sim/kubectl.ts) or in the lab's stand-in host.
 */
import { simulateCall } from '../lib/call.js';
import { abort } from '../lib/exit.js';
import { simEnv } from '../lib/env.js';
import { clusterProblem, labPoints } from '../lib/kube-client.js';
import { KUBE_VERSION } from '../lib/kube-cluster.js';
import { flagOn, flagValue, parseArgs, UsageError, type FlagSpec, type ParsedArgs } from '../lib/pflag.js';
import { apply } from './apply.js';
import { finish, type Io } from './context.js';
import { create } from './create.js';
import { remove } from './delete.js';
import { exec } from './exec.js';
import { get } from './get.js';
import { label } from './label.js';
import { logs } from './logs.js';
import { rollout } from './rollout.js';
import { wait } from './wait.js';
import { out, setCommand, toolCall } from '../lib/tool-io.js';

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
  timestamps: { value: false },
  'since-time': { value: true },
  tail: { value: true },
};

/** One call of the stand-in kubectl: as its own process (sim/kubectl.ts) or in the lab's stand-in host. */
export async function kubectl(): Promise<void> {
  const { argv } = toolCall();
  const env = simEnv();
  await simulateCall(env, 'kubectl', argv);
  let args: ParsedArgs;
  try {
    args = parseArgs(argv, FLAGS);
  } catch (err) {
    if (err instanceof UsageError) abort(`error: ${err.message}\nSee 'kubectl --help' for usage.`);
    throw err;
  }
  const [command, ...rest] = args.positionals;
  if (command) setCommand(command);
  if (!command) {
    out('kubectl controls the Kubernetes cluster manager.\n\nUsage:\n  kubectl [flags] [options]\n');
    return;
  }
  const lab = labPoints(env.lab);
  if (command === 'version' && flagOn(args, 'client')) {
    out(`Client Version: ${KUBE_VERSION}\nKustomize Version: v5.6.0\n`);
    return;
  }
  const known = [
    'apply',
    'delete',
    'get',
    'label',
    'rollout',
    'exec',
    'logs',
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
    case 'logs':
      await logs(ctx, rest);
      break;
    case 'create':
      await create(ctx, rest);
      break;
    case 'wait':
      await wait(ctx, rest);
      break;
    case 'version': {
      if (flagValue(ctx.args, 'output') === 'json') {
        // As kubectl prints it, with the fields the lab's actions read.
        const info = (gitVersion: string) => ({
          major: '1',
          minor: '33',
          gitVersion,
          platform: 'linux/amd64',
        });
        io.out.push(
          JSON.stringify(
            {
              clientVersion: info(KUBE_VERSION),
              kustomizeVersion: 'v5.6.0',
              serverVersion: info(`${KUBE_VERSION}+k0s`),
            },
            null,
            2,
          ),
        );
        break;
      }
      io.out.push(
        `Client Version: ${KUBE_VERSION}`,
        'Kustomize Version: v5.6.0',
        `Server Version: ${KUBE_VERSION}+k0s`,
      );
      break;
    }
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
