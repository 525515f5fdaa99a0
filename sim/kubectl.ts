/**
 * Stand-in `kubectl` of the simulated lab: the commands the lab's actions run (apply, delete, get,
 * label, rollout status/restart, exec, create, wait, version, cluster-info) with kubectl's flags, output
 * and error messages, against the simulated cluster in the sim state folder. `exec ... -- curl` is
 * decided by the mesh model (sim/mesh/model.ts); requests to the lab's app run the real curl against the
 * real nginx the `vagrant` stand-in started on loopback. This file holds the flags, the checks every
 * command makes and the dispatch; the verbs live in sim/kubectl/, one file each, beside what they share
 * (sim/kubectl/context.ts).
 */
import { simulateCall } from './lib/call.js';
import { abort, CliExit } from './lib/exit.js';
import { fail as exitWith, simEnv } from './lib/env.js';
import { clusterProblem, labPoints } from './lib/kube-client.js';
import { KUBE_VERSION } from './lib/kube-cluster.js';
import { flagOn, flagValue, parseArgs, UsageError, type FlagSpec, type ParsedArgs } from './lib/pflag.js';
import { apply } from './kubectl/apply.js';
import { finish, type Io } from './kubectl/context.js';
import { create } from './kubectl/create.js';
import { remove } from './kubectl/delete.js';
import { exec } from './kubectl/exec.js';
import { get } from './kubectl/get.js';
import { label } from './kubectl/label.js';
import { rollout } from './kubectl/rollout.js';
import { wait } from './kubectl/wait.js';

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

main().catch((err: unknown) =>
  err instanceof CliExit
    ? exitWith(err.message, err.code)
    : exitWith(`error: ${err instanceof Error ? err.message : String(err)}`),
);
