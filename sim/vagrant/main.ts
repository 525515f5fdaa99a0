/**
 * `vagrant` of the simulated lab (run through sim/bin/vagrant). It takes the argv the lab actions give the
 * real Vagrant and answers in Vagrant's formats and error texts, while its "machines" are folders under
 * `{state}/vms/<name>/` plus real daemons on 127.0.0.1: one OpenSSH sshd for every machine's shell and
 * one stand-in host that answers kubectl, istioctl and vagrant's read-only commands (both while any
 * machine runs), for the app machine nginx with mutual TLS, and for the proxy machine a real Envoy
 * running envoy/envoy.yaml. Machine records live in the sim state folder (see sim/lib/machines.ts);
 * latency and failure injection come from the lab file's `sim` section.
 */
import { createHash } from 'node:crypto';
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline/promises';
import { execa } from 'execa';
import { pinnedTool } from '../../src/lab/provisioning.js';
import { injectedFault, simulateCall } from '../lib/call.js';
import { latencyFor, simEnv, sleepUntil, type SimEnv } from '../lib/env.js';
import { CliExit } from '../lib/exit.js';
import { err, exit, out, setCommand, toolCall } from '../lib/tool-io.js';
import { CLUSTER_STATE } from '../lib/kube-cluster.js';
import { writeKubeconfig } from '../lib/kubeconfig.js';
import {
  lockedByOther,
  MACHINES,
  machineState,
  readDaemon,
  SSHD,
  type MachineRecord,
  type MachineState,
  type MachineTable,
  type SimMachine,
  type StoredState,
} from '../lib/machines.js';
import {
  destroyControlPlane,
  runningControlPlane,
  startControlPlane,
  stopControlPlane,
} from '../lib/control-plane.js';
import { istiodDir, restartIstiod, stopIstiod } from '../lib/istiod.js';
import { installAppCerts, startApp, stopApp } from '../lib/nginx.js';
import { startProxy, stopProxy } from '../lib/proxy.js';
import { isAlive } from '../lib/procs.js';
import { ensureSshd, sshdFiles, sshUser, stopSshd } from '../lib/sshd.js';
import { ensureStandinHost, stopStandinHost } from '../lib/standin-host.js';
import { readState, updateState } from '../lib/state.js';

const VERSION = '2.3.4';
const GLOBAL_FLAGS = new Set([
  '--machine-readable',
  '--color',
  '--no-color',
  '--tty',
  '--no-tty',
  '--debug',
  '--timestamp',
  '--debug-timestamp',
]);

/** A failure Vagrant reports with its error class and message (exit code 1). */
class VagrantError extends Error {
  constructor(
    readonly errorClass: string,
    message: string,
  ) {
    super(message);
  }
}

// Error texts as Vagrant 2.3 words them (templates/locales/en.yml).
const errors = {
  machineNotFound: (name: string) =>
    new VagrantError(
      'Vagrant::Errors::MachineNotFound',
      `The machine with the name '${name}' was not found configured for\nthis Vagrant environment.`,
    ),
  locked: (action: string, name: string) =>
    new VagrantError(
      'Vagrant::Errors::MachineActionLockedError',
      `An action '${action}' was attempted on the machine '${name}',
but another process is already executing an action on the machine.
Vagrant locks each machine for access by only one process at a time.
Please wait until the other Vagrant process finishes modifying this
machine, then try again.

If you believe this message is in error, please check the process
listing for any "ruby" or "vagrant" processes and kill them. Then
try again.`,
    ),
  sshNotReady: () =>
    new VagrantError(
      'Vagrant::Errors::SSHNotReady',
      `The provider for this Vagrant-managed machine is reporting that it
is not yet ready for SSH. Depending on your provider this can carry
different meanings. Make sure your machine is created and running and
try again. Additionally, check the output of \`vagrant status\` to verify
that the machine is in the state that you expect. If you continue to
get this error message, please view the documentation for the provider
you're using.`,
    ),
  vmNotRunning: () =>
    new VagrantError(
      'Vagrant::Errors::VMNotRunningError',
      'VM must be running to open SSH connection. Run `vagrant up`\nto start the virtual machine.',
    ),
  boxExists: (name: string, provider: string, version: string) =>
    new VagrantError(
      'Vagrant::Errors::BoxAlreadyExists',
      `The box you're attempting to add already exists. Remove it before
adding it again or add it with the \`--force\` flag.

Name: ${name}
Provider: ${provider}
Version: ${version}`,
    ),
  providerNotFound: (provider: string, machine: string, known: string[]) =>
    new VagrantError(
      'Vagrant::Errors::ProviderNotFound',
      `The provider '${provider}' could not be found, but was requested to
back the machine '${machine}'. Please use a provider that exists.

Vagrant knows about the following providers: ${known.join(', ')}`,
    ),
  uiExpectsTty: () =>
    new VagrantError(
      'Vagrant::Errors::UIExpectsTTY',
      `Vagrant is attempting to interface with the UI in a way that requires
a TTY. Most actions in Vagrant that require a TTY have configuration
switches to disable this requirement. Please do that or run Vagrant
with TTY.`,
    ),
  multiVmTargetRequired: () =>
    new VagrantError(
      'Vagrant::Errors::MultiVMTargetRequired',
      'This command requires a specific VM name to target in a multi-VM environment.',
    ),
  invalidOptions: (help: string) =>
    new VagrantError(
      'Vagrant::Errors::CLIInvalidOptions',
      `An invalid option was specified. The help for this command\nis available below.\n\n${help}`,
    ),
  invalidUsage: (help: string) =>
    new VagrantError(
      'Vagrant::Errors::CLIInvalidUsage',
      `This command was not invoked properly. The help for this command is\navailable below.\n\n${help}`,
    ),
  provisionFailed: (detail: string) =>
    new VagrantError(
      'Vagrant::Errors::VagrantError',
      `The SSH command responded with a non-zero exit status. Vagrant
assumes that this means the command failed. The output for this command
should be in the log above. Please read the output to determine what
went wrong.

${detail}`,
    ),
};

const USAGE = `Usage: vagrant [options] <command> [<args>]

    -h, --help                       Print this help.

Common commands:
     box             manages boxes: installation, removal, etc.
     destroy         stops and deletes all traces of the vagrant machine
     halt            stops the vagrant machine
     provision       provisions the vagrant machine
     ssh             connects to machine via SSH
     ssh-config      outputs OpenSSH valid configuration to connect to the machine
     status          outputs status of the vagrant machine
     up              starts and provisions the vagrant environment
     validate        validates the Vagrantfile
     version         prints current and latest Vagrant version

For help on any individual command run \`vagrant COMMAND -h\``;

/** Vagrant's output: plain lines, or `timestamp,target,type,data` lines with --machine-readable. */
class Ui {
  constructor(readonly machineReadable: boolean) {}

  machine(target: string, type: string, ...data: string[]): void {
    const escaped = data.map((d) =>
      d.replace(/,/g, '%!(VAGRANT_COMMA)').replace(/\n/g, '\\n').replace(/\r/g, '\\r'),
    );
    out(`${Math.floor(Date.now() / 1000)},${target},${type},${escaped.join(',')}\n`);
  }

  info(text: string, target = ''): void {
    if (this.machineReadable) this.machine(target, 'ui', 'info', text);
    else out(`${text}\n`);
  }

  /** A machine's step: `==> name: text`. */
  say(name: string, text: string): void {
    for (const line of text.split('\n'))
      this.info(this.machineReadable ? line : `==> ${name}: ${line}`, name);
  }

  /** Detail under a step, e.g. provisioner output: `    name: text`. */
  detail(name: string, text: string): void {
    for (const line of text.split('\n'))
      this.info(this.machineReadable ? line : `    ${name}: ${line}`, name);
  }

  error(problem: VagrantError): void {
    if (this.machineReadable) {
      this.machine('', 'ui', 'error', problem.message);
      this.machine('', 'error-exit', problem.errorClass, problem.message);
    } else {
      err(`${problem.message}\n`);
    }
  }
}

/** What the stand-in knows of the lab: its machines, provider, box and folders. */
interface Lab {
  env: SimEnv;
  simState: string;
  labState: string;
  machines: Record<string, SimMachine>;
  names: string[];
  defaultProvider: string;
  /** Providers `--provider` may name: the lab's and the simulator's own. */
  providers: string[];
  box?: { name: string; version?: string };
  certsDir: string;
}

function labContext(env: SimEnv): Lab {
  const { env: callEnv } = toolCall();
  const { labState } = env;
  const labDir = path.dirname(env.labFile);
  const vagrant = (env.lab.vagrant ?? {}) as {
    provider?: string;
    box?: string;
    boxVersion?: string;
    certsDir?: string;
  };
  const machines = env.lab.machines as Record<string, SimMachine>;
  const defaultProvider = callEnv.VAGRANT_DEFAULT_PROVIDER || vagrant.provider || 'sim';
  return {
    env,
    simState: env.stateDir,
    labState,
    machines,
    names: Object.keys(machines),
    defaultProvider,
    providers: [...new Set([vagrant.provider ?? 'sim', 'sim'])],
    box: vagrant.box ? { name: vagrant.box, version: vagrant.boxVersion } : undefined,
    // The same rule as the lab loader, so that the stand-in and the actions agree on the folder.
    certsDir: path.resolve(
      labDir,
      callEnv.TUNNEL_LAB_CERTS_DIR || vagrant.certsDir || path.join(labState, 'certs'),
    ),
  };
}

type OptionKind = 'flag' | 'bool' | 'value';
type OptionSpec = Record<string, { key: string; kind: OptionKind }>;

/** OptionParser-like parsing: options anywhere, `--opt value` or `--opt=value`, `--[no-]bool`, `--` ends options. */
function parseOptions(
  args: string[],
  spec: OptionSpec,
  usage: string,
): { opts: Map<string, string | boolean>; positional: string[]; rest: string[] } {
  const opts = new Map<string, string | boolean>();
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') return { opts, positional, rest: args.slice(i + 1) };
    if (arg === '-h' || arg === '--help') {
      out(`${usage}\n`);
      exit(0);
    }
    if (!arg.startsWith('-') || arg === '-') {
      positional.push(arg);
      continue;
    }
    const [flag, inline] = arg.includes('=')
      ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)]
      : [arg, undefined];
    const negated = flag.startsWith('--no-') ? spec[`--${flag.slice(5)}`] : undefined;
    if (negated?.kind === 'bool') {
      opts.set(negated.key, false);
      continue;
    }
    const option = spec[flag];
    if (!option) throw errors.invalidOptions(usage);
    if (option.kind === 'value') {
      const value = inline ?? args[++i];
      if (value === undefined) throw errors.invalidOptions(usage);
      opts.set(option.key, value);
    } else {
      opts.set(option.key, true);
    }
  }
  return { opts, positional, rest: [] };
}

/** The named machines, or all of them; an unknown name fails as in Vagrant. */
function targets(lab: Lab, names: string[]): string[] {
  for (const name of names) if (!lab.machines[name]) throw errors.machineNotFound(name);
  return names.length > 0 ? [...new Set(names)] : lab.names;
}

const SHORT: Record<MachineState, string> = {
  running: 'running',
  poweroff: 'poweroff',
  not_created: 'not created',
  aborted: 'aborted',
};

const LONG: Record<MachineState, string> = {
  running: `The VM is running. To stop this VM, you can run \`vagrant halt\` to
shut it down forcefully, or you can run \`vagrant suspend\` to simply
suspend the virtual machine. In either case, to restart it again,
simply run \`vagrant up\`.`,
  poweroff: 'The VM is powered off. To restart the VM, simply run `vagrant up`',
  not_created: `The environment has not yet been created. Run \`vagrant up\` to
create the environment. If a machine is not created, only the
default provider will be shown. So if a provider is not listed,
then the machine is not created for that environment.`,
  aborted: `The VM is in an aborted state. This means that it was abruptly
stopped without properly closing the session. Run \`vagrant up\`
to resume this virtual machine. If any problems persist, you may
have to destroy and restart the virtual machine.`,
};

function stateOf(
  lab: Lab,
  name: string,
  table: MachineTable = readState<MachineTable>(lab.simState, MACHINES, {}),
): MachineState {
  return machineState(lab.simState, name, lab.machines[name]!, table[name]);
}

function status(lab: Lab, ui: Ui, args: string[]): number {
  const usage = 'Usage: vagrant status [name|id]';
  const { positional } = parseOptions(args, {}, usage);
  const names = targets(lab, positional);
  const table = readState<MachineTable>(lab.simState, MACHINES, {});
  const rows = names.map((name) => ({
    name,
    state: stateOf(lab, name, table),
    provider: table[name]?.provider ?? lab.defaultProvider,
  }));
  if (ui.machineReadable) for (const row of rows) ui.machine(row.name, 'metadata', 'provider', row.provider);
  const width = Math.max(25, ...names.map((n) => n.length));
  for (const row of rows) {
    if (!ui.machineReadable) continue;
    ui.machine(row.name, 'provider-name', row.provider);
    ui.machine(row.name, 'state', row.state);
    ui.machine(row.name, 'state-human-short', SHORT[row.state]);
    ui.machine(row.name, 'state-human-long', LONG[row.state]);
  }
  const listing = rows.map((r) => `${r.name.padEnd(width)} ${SHORT[r.state]} (${r.provider})`).join('\n');
  const message =
    rows.length === 1
      ? LONG[rows[0]!.state]
      : 'This environment represents multiple VMs. The VMs are all listed\nabove with their current state. For more information about a specific\nVM, run `vagrant status NAME`.';
  ui.info(`Current machine states:\n\n${listing}\n\n${message}`);
  return 0;
}

interface Box {
  name: string;
  provider: string;
  version: string;
}

const BOXES = 'boxes';

async function box(lab: Lab, ui: Ui, args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  const usage = 'Usage: vagrant box <subcommand> [<args>]\n\nAvailable subcommands:\n     add\n     list';
  if (sub === 'list') {
    parseOptions(
      rest,
      { '-i': { key: 'info', kind: 'flag' }, '--box-info': { key: 'info', kind: 'flag' } },
      'Usage: vagrant box list [options]',
    );
    const boxes = readState<Box[]>(lab.simState, BOXES, []);
    if (boxes.length === 0) {
      const text = 'There are no installed boxes! Use `vagrant box add` to add some.';
      if (ui.machineReadable) ui.machine('', 'ui', 'warn', text);
      else out(`${text}\n`);
      return 0;
    }
    const width = Math.max(...boxes.map((b) => b.name.length));
    for (const b of boxes) {
      ui.info(`${b.name.padEnd(width)} (${b.provider}, ${b.version})`);
      if (!ui.machineReadable) continue;
      ui.machine('', 'box-name', b.name);
      ui.machine('', 'box-provider', b.provider);
      ui.machine('', 'box-version', b.version);
    }
    return 0;
  }
  if (sub === 'add') {
    const addUsage = 'Usage: vagrant box add [options] <name, url, or path>';
    const { opts, positional } = parseOptions(
      rest,
      {
        '--box-version': { key: 'version', kind: 'value' },
        '--provider': { key: 'provider', kind: 'value' },
        '-f': { key: 'force', kind: 'flag' },
        '--force': { key: 'force', kind: 'flag' },
        '-c': { key: 'clean', kind: 'flag' },
        '--clean': { key: 'clean', kind: 'flag' },
        '--insecure': { key: 'insecure', kind: 'flag' },
      },
      addUsage,
    );
    const name = positional[0];
    if (!name || positional.length > 2) throw errors.invalidUsage(addUsage);
    await addBox(lab, ui, 'box', opts.get('force') === true, {
      name,
      provider: (opts.get('provider') as string | undefined) ?? lab.defaultProvider,
      // Without a constraint Vagrant takes the newest version; the lab's pinned one stands for it here.
      version:
        (opts.get('version') as string | undefined) ??
        (lab.box?.name === name ? lab.box.version : undefined) ??
        '0',
    });
    return 0;
  }
  throw errors.invalidUsage(usage);
}

async function addBox(lab: Lab, ui: Ui, target: string, force: boolean, wanted: Box): Promise<void> {
  ui.say(target, `Loading metadata for box '${wanted.name}'`);
  await updateState<Box[], void>(lab.simState, BOXES, [], (boxes) => {
    const same = boxes.findIndex(
      (b) => b.name === wanted.name && b.provider === wanted.provider && b.version === wanted.version,
    );
    if (same >= 0 && !force) throw errors.boxExists(wanted.name, wanted.provider, wanted.version);
    if (same >= 0) boxes.splice(same, 1);
    boxes.push(wanted);
  });
  ui.say(target, `Adding box '${wanted.name}' (v${wanted.version}) for provider: ${wanted.provider}`);
  ui.say(target, `Successfully added box '${wanted.name}' (v${wanted.version}) for '${wanted.provider}'!`);
}

function hasBox(lab: Lab, provider: string): boolean {
  const wanted = lab.box!;
  return readState<Box[]>(lab.simState, BOXES, []).some(
    (b) =>
      b.name === wanted.name && b.provider === provider && (!wanted.version || b.version === wanted.version),
  );
}

function now(): string {
  return new Date().toISOString();
}

/** Takes Vagrant's per-machine lock for `action` on each machine `wanted` selects; fails when another process holds one. */
async function claim(
  lab: Lab,
  action: string,
  names: string[],
  wanted: (state: MachineState) => boolean,
  provider = lab.defaultProvider,
): Promise<Map<string, MachineState>> {
  return updateState<MachineTable, Map<string, MachineState>>(lab.simState, MACHINES, {}, (table) => {
    const locked = names.find((name) => lockedByOther(table[name]));
    if (locked) throw errors.locked(action, locked);
    const states = new Map(names.map((name) => [name, stateOf(lab, name, table)]));
    for (const [name, state] of states) {
      if (!wanted(state)) continue;
      const record: MachineRecord = table[name] ?? { state: 'not_created', provider };
      table[name] = { ...record, busy: { pid: process.pid, action, since: now() } };
    }
    return states;
  });
}

/**
 * Releases a machine's lock, storing its next state (`undefined`: forget the machine), and stops the sshd
 * when no machine runs and no action is under way any more.
 */
async function release(
  lab: Lab,
  name: string,
  next: StoredState | 'unchanged' | undefined,
  provider?: string,
): Promise<void> {
  await updateState<MachineTable, void>(lab.simState, MACHINES, {}, async (table) => {
    const record = table[name];
    if (next === undefined) delete table[name];
    else if (record) {
      delete record.busy;
      if (next !== 'unchanged') record.state = next;
      if (provider && next === 'running') record.provider = provider;
    }
    const inUse = Object.values(table).some((r) => r.state === 'running' || (r.busy && isAlive(r.busy.pid)));
    if (!inUse) await Promise.all([stopSshd(lab.simState), stopStandinHost(lab.simState)]);
  });
}

function vmDir(lab: Lab, name: string): string {
  return path.join(lab.labState, 'vms', name);
}

/** Starts a machine's services, as its boot does (systemd units the provisioning enabled). */
async function startServices(lab: Lab, ui: Ui, name: string): Promise<void> {
  const machine = lab.machines[name]!;
  const files = machine.files ?? {};
  if (machine.role === 'kubernetes' && files.kubeconfig && lab.env.sim.controlPlane === 'real') {
    const started = await startControlPlane({
      simState: lab.simState,
      kubeconfig: files.kubeconfig,
      nodeName: name,
      nodeIp: machine.ip ?? '10.0.2.15',
      log: (line) => ui.detail(name, line),
    });
    for (const message of started.messages) ui.detail(name, message);
    const istiod = await restartIstiod(lab.simState, runningControlPlane(lab.simState)!.kubeconfig);
    if (istiod) ui.detail(name, `k8s: istiod started again (xDS on 127.0.0.1:${istiod.grpcPort})`);
    ui.detail(name, `k8s: admin kubeconfig at ${files.kubeconfig}`);
  } else if (machine.role === 'kubernetes' && files.kubeconfig) {
    if (!existsSync(files.kubeconfig)) await writeKubeconfig(files.kubeconfig);
    ui.detail(name, `k8s: k0s controller is running; admin kubeconfig at ${files.kubeconfig}`);
  }
  if (machine.role === 'proxy' && files.accessLog) {
    if (!existsSync(files.accessLog)) appendFileSync(files.accessLog, '');
    ui.detail(name, `external-proxy: envoy access log at ${files.accessLog}`);
    const started = await startProxy({
      simState: lab.simState,
      accessLog: files.accessLog,
      authRoutes: files.authRoutes ?? path.join(vmDir(lab, name), 'etc', 'envoy', 'auth', 'routes.yaml'),
    });
    for (const message of started.messages) ui.detail(name, message);
  }
  if (machine.role === 'app') {
    const started = await startApp(appOptions(lab, name));
    for (const message of started.messages) ui.detail(name, message);
  }
}

function appOptions(lab: Lab, name: string) {
  const machine = lab.machines[name]!;
  return {
    simState: lab.simState,
    name,
    ip: machine.ip ?? '127.0.0.1',
    vmDir: vmDir(lab, name),
    accessLog: machine.files?.accessLog ?? path.join(vmDir(lab, name), 'var', 'log', 'nginx', 'access.log'),
    certsDir: lab.certsDir,
  };
}

/**
 * What the machine's provision script does: installs its role's files (the app's certificates), (re)starts
 * its services, and writes the provisioning marker last, as vagrant/provision/*.sh do. A fault injected as
 * `provision NAME` stops it after the services and before the marker: a half-provisioned machine.
 */
async function provision(lab: Lab, ui: Ui, name: string): Promise<void> {
  const machine = lab.machines[name]!;
  ui.say(name, 'Running provisioner: shell...');
  ui.detail(name, 'Running: inline script');
  try {
    if (machine.role === 'app') {
      for (const message of await installAppCerts(appOptions(lab, name))) ui.detail(name, message);
    }
    await startServices(lab, ui, name);
    const fault = await injectedFault(lab.env, `provision ${name}`);
    if (fault) throw new Error(fault.stderr ?? `simulated failure of the provisioning of ${name}`);
    writeMarker(lab, name);
  } catch (err) {
    throw errors.provisionFailed(err instanceof Error ? err.message : String(err));
  }
}

/** The provisioning marker (see src/lab/provisioning.ts): role, pinned versions, the app's certificates. */
function writeMarker(lab: Lab, name: string): void {
  const machine = lab.machines[name]!;
  const file = machine.files?.provisioned;
  if (!file) return;
  // YAML may give a version as a number (1.36 rather than '1.36'); the scripts get it as text.
  const versions = (lab.env.lab.vagrant as { versions?: Record<string, string | number> } | undefined)
    ?.versions;
  const lines = [`role=${machine.role ?? ''}`];
  const pinned = pinnedTool(machine.role);
  if (pinned && versions?.[pinned] !== undefined) lines.push(`${pinned}=${versions[pinned]}`);
  if (machine.role === 'app') {
    const tls = path.join(vmDir(lab, name), 'etc', 'nginx', 'tls');
    const sha256 = (f: string) =>
      createHash('sha256')
        .update(readFileSync(path.join(tls, f)))
        .digest('hex');
    lines.push(`ca=${sha256('ca.crt')}`, `cert=${sha256('external-app.crt')}`);
    lines.push(`temporary=${existsSync(path.join(tls, 'TEMPORARY')) ? 'yes' : 'no'}`);
  }
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(`${file}.tmp`, `${lines.join('\n')}\n`);
  renameSync(`${file}.tmp`, file);
}

async function stopServices(lab: Lab, name: string): Promise<void> {
  if (lab.machines[name]!.role === 'app') await stopApp(lab.simState, name);
  if (lab.machines[name]!.role === 'proxy') await stopProxy(lab.simState);
  if (lab.machines[name]!.role === 'kubernetes') {
    await stopIstiod(lab.simState);
    await stopControlPlane(lab.simState);
  }
}

/**
 * Boots one claimed machine: its folders and the lab's sshd; then, as Vagrant does, runs its provisioner
 * only when the machine is new (or `provision` is set), else just starts its services. A provisioner that
 * fails leaves the machine running, as a failed `vagrant up` does.
 *
 * The configured latency is how long the whole boot takes, counted from `since`, provisioning included:
 * the services start while it runs, and the machine is up once both have ended (a service slower than the
 * latency makes the boot longer).
 */
async function boot(
  lab: Lab,
  ui: Ui,
  name: string,
  provider: string,
  commandLine: string,
  provisioning: boolean,
  since: number,
): Promise<void> {
  const delay = latencyFor(lab.env.sim, commandLine);
  const latency = delay > 0 ? sleepUntil(since + delay) : undefined;
  // Awaited once the services run; a boot that fails before that never awaits it.
  latency?.catch(() => undefined);
  try {
    ui.say(name, 'Booting VM...');
    ui.say(name, 'Waiting for machine to boot. This may take a few minutes...');
    mkdirSync(vmDir(lab, name), { recursive: true });
    for (const file of Object.values(lab.machines[name]!.files ?? {})) {
      mkdirSync(path.dirname(file), { recursive: true });
    }
    const [sshd] = await Promise.all([
      ensureSshd(lab.simState),
      // The model cluster's kubectl and istioctl calls are answered by the lab's stand-in host.
      lab.env.sim.controlPlane === 'model' ? ensureStandinHost(lab.simState) : undefined,
    ]);
    ui.detail(name, `SSH address: 127.0.0.1:${sshd.port}`);
    ui.detail(name, `SSH username: ${sshUser()}`);
    ui.detail(name, 'SSH auth method: private key');
    ui.say(name, 'Machine booted and ready!');
  } catch (err) {
    await stopServices(lab, name).catch(() => undefined);
    await release(lab, name, 'unchanged');
    throw err;
  }
  try {
    if (provisioning) await provision(lab, ui, name);
    else {
      ui.say(name, 'Machine already provisioned. Run `vagrant provision` or use the `--provision`');
      ui.say(name, 'flag to force provisioning. Provisioners marked to run always will still run.');
      await startServices(lab, ui, name);
    }
  } finally {
    await latency;
    await release(lab, name, 'running', provider);
  }
}

/** Runs `body` for every name (at once, or one after the other) and fails with the first failure after all ended. */
async function eachMachine(
  names: string[],
  parallel: boolean,
  body: (name: string) => Promise<void>,
): Promise<void> {
  const results: PromiseSettledResult<void>[] = [];
  if (parallel) results.push(...(await Promise.allSettled(names.map(body))));
  else for (const name of names) results.push(...(await Promise.allSettled([body(name)])));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

async function up(lab: Lab, ui: Ui, args: string[], commandLine: string): Promise<number> {
  const usage = 'Usage: vagrant up [options] [name|id]';
  const { opts, positional } = parseOptions(
    args,
    {
      '--provision': { key: 'provision', kind: 'bool' },
      '--provision-with': { key: 'provisionWith', kind: 'value' },
      '--destroy-on-error': { key: 'destroyOnError', kind: 'bool' },
      '--parallel': { key: 'parallel', kind: 'bool' },
      '--provider': { key: 'provider', kind: 'value' },
      '--install-provider': { key: 'installProvider', kind: 'bool' },
    },
    usage,
  );
  const names = targets(lab, positional);
  const provider = (opts.get('provider') as string | undefined) ?? lab.defaultProvider;
  if (!lab.providers.includes(provider)) throw errors.providerNotFound(provider, names[0]!, lab.providers);
  for (const name of names) ui.info(`Bringing machine '${name}' up with '${provider}' provider...`);
  const states = await claim(lab, 'up', names, (state) => state !== 'running', provider);
  const toBoot = names.filter((name) => states.get(name) !== 'running');
  if (toBoot.length > 0 && lab.box && !hasBox(lab, provider)) {
    ui.say(toBoot[0]!, `Box '${lab.box.name}' could not be found. Attempting to find and install...`);
    try {
      await addBox(lab, ui, toBoot[0]!, false, {
        name: lab.box.name,
        provider,
        version: lab.box.version ?? '0',
      });
    } catch (err) {
      for (const name of toBoot) await release(lab, name, 'unchanged');
      throw err;
    }
  }
  for (const name of names.filter((n) => !toBoot.includes(n))) {
    ui.say(name, 'Machine already running.');
    if (opts.get('provision') === true) await provision(lab, ui, name);
    else {
      ui.say(name, 'Machine already provisioned. Run `vagrant provision` or use the `--provision`');
      ui.say(name, 'flag to force provisioning. Provisioners marked to run always will still run.');
    }
  }
  // VirtualBox cannot boot machines in parallel, whatever --parallel says.
  const parallel = opts.get('parallel') !== false && provider !== 'virtualbox';
  const provisioning = (name: string) =>
    opts.get('provision') === true || (opts.get('provision') !== false && states.get(name) === 'not_created');
  // The boots that start with the command count their latency from its start, as its own start-up is part
  // of how long `vagrant up` takes; a serial boot counts from when it begins.
  const since = (name: string) => (parallel || name === toBoot[0] ? toolCall().startedAt : Date.now());
  await eachMachine(toBoot, parallel, (name) =>
    boot(lab, ui, name, provider, commandLine, provisioning(name), since(name)),
  );
  return 0;
}

async function halt(lab: Lab, ui: Ui, args: string[]): Promise<number> {
  const usage = 'Usage: vagrant halt [options] [name|id]';
  const { opts, positional } = parseOptions(
    args,
    { '-f': { key: 'force', kind: 'flag' }, '--force': { key: 'force', kind: 'flag' } },
    usage,
  );
  for (const name of targets(lab, positional)) {
    const state = (await claim(lab, 'halt', [name], (s) => s === 'running' || s === 'aborted')).get(name)!;
    if (state === 'not_created') ui.say(name, 'VM not created. Moving on...');
    if (state !== 'running' && state !== 'aborted') continue;
    ui.say(
      name,
      opts.get('force') === true ? 'Forcing shutdown of VM...' : 'Attempting graceful shutdown of VM...',
    );
    try {
      await stopServices(lab, name);
    } finally {
      await release(lab, name, 'poweroff');
    }
  }
  return 0;
}

async function confirmDestroy(name: string): Promise<boolean> {
  if (!process.stdin.isTTY) throw errors.uiExpectsTty();
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  try {
    const answer = await rl.question(
      `    ${name}: Are you sure you want to destroy the '${name}' VM? [y/N] `,
    );
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}

async function destroy(lab: Lab, ui: Ui, args: string[]): Promise<number> {
  const usage = 'Usage: vagrant destroy [options] [name|id]';
  const { opts, positional } = parseOptions(
    args,
    {
      '-f': { key: 'force', kind: 'flag' },
      '--force': { key: 'force', kind: 'flag' },
      '-g': { key: 'graceful', kind: 'flag' },
      '--graceful': { key: 'graceful', kind: 'flag' },
      '--parallel': { key: 'parallel', kind: 'bool' },
    },
    usage,
  );
  // Vagrant destroys in reverse definition order.
  for (const name of [...targets(lab, positional)].reverse()) {
    const state = (await claim(lab, 'destroy', [name], (s) => s !== 'not_created')).get(name)!;
    if (state === 'not_created') {
      ui.say(name, 'VM not created. Moving on...');
      continue;
    }
    try {
      if (opts.get('force') !== true && !(await confirmDestroy(name))) {
        ui.say(name, `The VM '${name}' will not be destroyed, since the confirmation\nwas declined.`);
        await release(lab, name, 'unchanged');
        continue;
      }
      if (state === 'running' || state === 'aborted') {
        ui.say(
          name,
          opts.get('graceful') === true
            ? 'Attempting graceful shutdown of VM...'
            : 'Forcing shutdown of VM...',
        );
        await stopServices(lab, name);
      }
      ui.say(name, 'Destroying VM and associated drives...');
      rmSync(vmDir(lab, name), { recursive: true, force: true });
      rmSync(path.join(lab.simState, name), { recursive: true, force: true });
      // The cluster lives on the Kubernetes machine's disk: a rebuilt machine starts with an empty one.
      if (lab.machines[name]!.role === 'kubernetes') {
        rmSync(path.join(lab.simState, `${CLUSTER_STATE}.json`), { force: true });
        await destroyControlPlane(lab.simState);
        rmSync(istiodDir(lab.simState), { recursive: true, force: true });
      }
    } catch (err) {
      await release(lab, name, 'unchanged');
      throw err;
    }
    await release(lab, name, undefined);
  }
  return 0;
}

/** A running machine's sshd port, or the error Vagrant gives for a machine without SSH. */
function sshPort(lab: Lab, name: string, action: string): number {
  const table = readState<MachineTable>(lab.simState, MACHINES, {});
  if (lockedByOther(table[name])) throw errors.locked(action, name);
  if (stateOf(lab, name, table) !== 'running') throw errors.sshNotReady();
  return readDaemon(lab.simState, SSHD).port!;
}

function sshConfig(lab: Lab, ui: Ui, args: string[]): number {
  const usage =
    'Usage: vagrant ssh-config [options] [name|id]\n\nOptions:\n\n        --host NAME                  Name the host for the config';
  const { opts, positional } = parseOptions(args, { '--host': { key: 'host', kind: 'value' } }, usage);
  const key = sshdFiles(lab.simState).userKey;
  const blocks = targets(lab, positional).map((name) => {
    const port = sshPort(lab, name, 'ssh_config');
    const block = [
      `Host ${(opts.get('host') as string | undefined) ?? name}`,
      '  HostName 127.0.0.1',
      `  User ${sshUser()}`,
      `  Port ${port}`,
      '  UserKnownHostsFile /dev/null',
      '  StrictHostKeyChecking no',
      '  PasswordAuthentication no',
      key.includes(' ') ? `  IdentityFile "${key}"` : `  IdentityFile ${key}`,
      '  IdentitiesOnly yes',
      '  LogLevel FATAL',
      '',
    ].join('\n');
    return { name, block };
  });
  for (const { name, block } of blocks) {
    if (ui.machineReadable) ui.machine(name, 'ssh-config', block);
    out(`${block}\n`);
  }
  return 0;
}

async function ssh(lab: Lab, args: string[]): Promise<number> {
  const usage = 'Usage: vagrant ssh [options] [name|id] [-- extra ssh args]';
  const { opts, positional, rest } = parseOptions(
    args,
    {
      '-c': { key: 'command', kind: 'value' },
      '--command': { key: 'command', kind: 'value' },
      '-p': { key: 'plain', kind: 'flag' },
      '--plain': { key: 'plain', kind: 'flag' },
      '-t': { key: 'tty', kind: 'bool' },
      '--tty': { key: 'tty', kind: 'bool' },
    },
    usage,
  );
  if (positional.length === 0 && lab.names.length > 1) throw errors.multiVmTargetRequired();
  const [name] = targets(lab, positional.slice(0, 1));
  const port = sshPort(lab, name!, 'ssh_run');
  const command = opts.get('command') as string | undefined;
  const result = await execa(
    'ssh',
    [
      ...['-p', String(port), '-i', sshdFiles(lab.simState).userKey],
      ...['-o', 'UserKnownHostsFile=/dev/null', '-o', 'StrictHostKeyChecking=no', '-o', 'IdentitiesOnly=yes'],
      ...['-o', 'PasswordAuthentication=no', '-o', 'LogLevel=FATAL'],
      ...(opts.get('tty') === true ? ['-t'] : []),
      ...rest,
      `${sshUser()}@127.0.0.1`,
      ...(command === undefined ? [] : [command]),
    ],
    { stdio: 'inherit', reject: false },
  );
  return result.exitCode ?? 1;
}

async function provisionCommand(lab: Lab, ui: Ui, args: string[]): Promise<number> {
  const usage = 'Usage: vagrant provision [vm-name] [--provision-with x,y,z]';
  const { positional } = parseOptions(args, { '--provision-with': { key: 'with', kind: 'value' } }, usage);
  for (const name of targets(lab, positional)) {
    const state = (await claim(lab, 'provision', [name], () => true)).get(name)!;
    try {
      if (state === 'not_created') {
        ui.say(name, 'VM not created. Moving on...');
        continue;
      }
      if (state !== 'running') throw errors.vmNotRunning();
      await provision(lab, ui, name);
    } finally {
      await release(lab, name, 'unchanged');
    }
  }
  return 0;
}

async function run(argv: string[]): Promise<number> {
  const ui = new Ui(argv.includes('--machine-readable'));
  const args = argv.filter((arg) => !GLOBAL_FLAGS.has(arg));
  const [command, ...rest] = args;
  if (command) setCommand(command);
  if (command === '-v' || command === '--version' || command === 'version') {
    ui.info(`Vagrant ${VERSION}`);
    return 0;
  }
  if (command === '-h' || command === '--help' || command === 'help') {
    ui.info(USAGE);
    return 0;
  }
  const env = simEnv();
  const lab = labContext(env);
  appendFileSync(
    path.join(lab.simState, 'vagrant-calls.jsonl'),
    `${JSON.stringify({ at: now(), pid: process.pid, argv })}\n`,
  );
  const commandLine = ['vagrant', ...argv].join(' ');
  // `vagrant up` takes its latency once per machine it boots (see boot), so that serial boots add up.
  await simulateCall(command === 'up' ? { ...env, sim: { ...env.sim, latency: {} } } : env, 'vagrant', argv);
  try {
    switch (command) {
      case 'status':
        return status(lab, ui, rest);
      case 'box':
        return await box(lab, ui, rest);
      case 'up':
        return await up(lab, ui, rest, commandLine);
      case 'halt':
        return await halt(lab, ui, rest);
      case 'destroy':
        return await destroy(lab, ui, rest);
      case 'ssh-config':
        return sshConfig(lab, ui, rest);
      case 'ssh':
        return await ssh(lab, rest);
      case 'provision':
        return await provisionCommand(lab, ui, rest);
      case 'validate':
        ui.info('Vagrantfile validated successfully.');
        return 0;
      default:
        out(`${USAGE}\n`);
        return 1;
    }
  } catch (err) {
    if (err instanceof VagrantError) {
      ui.error(err);
      return 1;
    }
    throw err;
  }
}

/**
 * One call of the stand-in vagrant: as a process of its own (sim/vagrant.ts), or in the lab's stand-in
 * host for the commands that only read (see `servedByHost`).
 */
export async function vagrant(): Promise<void> {
  let code: number;
  try {
    code = await run(toolCall().argv);
  } catch (thrown) {
    if (thrown instanceof CliExit) throw thrown;
    err(
      `vagrant (simulated lab): ${thrown instanceof Error ? (thrown.stack ?? thrown.message) : String(thrown)}\n`,
    );
    code = 1;
  }
  if (code !== 0) exit(code);
}

/**
 * The commands the stand-in host may answer: those that only read the lab's state. The others start
 * and stop machines (and the host with them), or talk to the user, and always run as processes.
 */
export function servedByHost(argv: string[]): boolean {
  const [command, sub] = argv.filter((arg) => !GLOBAL_FLAGS.has(arg));
  return command === 'status' || command === 'ssh-config' || (command === 'box' && sub === 'list');
}
