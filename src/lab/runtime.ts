/**
 * What a lab action works with: the lab's tools (run as argv through execa, with the lab's environment,
 * the activity's cancellation signal and a heartbeat while they run) and its machines' shells over ssh2.
 */
import path from 'node:path';
import { ExpectationError, LabConfigError, LabToolError } from '../errors.js';
import { runCommand, type CommandContext, type CommandOptions } from '../run-command.js';
import { expandPath, labPlace, vagrantOf, type LabDefinition, type LabMachine } from './definition.js';
import type { PodNames } from './pod-names.js';
import { parseSshConfig, parseSshConfigs, SshSession, type SshTarget } from './ssh.js';
import type { SshPool } from './ssh-pool.js';

export interface ToolResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface ToolOptions {
  cwd?: string;
  input?: string;
  timeoutMs?: number;
  /** Throw LabToolError on a non-zero exit (the default). */
  check?: boolean;
}

const STDERR_TAIL = 600;

export class LabRuntime {
  constructor(
    readonly def: LabDefinition,
    private readonly ctx: CommandContext,
    /** The worker's shared ssh connections; without one, each use opens and closes its own. */
    private readonly sshPool?: SshPool,
    /** The worker's kept pod names; without it, every use asks the cluster. */
    private readonly pods?: PodNames,
  ) {}

  /** The kubeconfig `kubeconfig.fetch` stores and every kubectl/istioctl call uses. */
  get kubeconfig(): string {
    return path.join(this.def.stateDir, 'kubeconfig');
  }

  async tool(
    name: keyof LabDefinition['tools'] & string,
    args: string[],
    options: ToolOptions = {},
  ): Promise<ToolResult> {
    const program = this.def.tools[name];
    if (!program)
      throw new LabConfigError(`the lab ${this.def.name} names no tool "${name}" (${this.def.file})`);
    const commandOptions: CommandOptions = {
      env: this.def.env,
      notFound: `${program} not found: install ${name} or set tools.${name} in ${this.def.file}`,
    };
    if (options.cwd) commandOptions.cwd = options.cwd;
    if (options.input) commandOptions.input = options.input;
    if (options.timeoutMs) commandOptions.timeoutMs = options.timeoutMs;
    const result = await runCommand(this.ctx, program, args, commandOptions);
    const out: ToolResult = { exitCode: result.exitCode, stdout: result.stdout, stderr: result.stderr };
    if (result.timedOut) {
      throw new LabToolError([program, ...args], undefined, `timed out after ${options.timeoutMs} ms`);
    }
    if (options.check !== false && out.exitCode !== 0) {
      throw new LabToolError(
        [path.basename(program), ...args],
        out.exitCode,
        (out.stderr || out.stdout).slice(-STDERR_TAIL).trim(),
      );
    }
    return out;
  }

  kubectl(args: string[], options?: ToolOptions): Promise<ToolResult> {
    return this.tool('kubectl', ['--kubeconfig', this.kubeconfig, ...args], options);
  }

  istioctl(args: string[], options?: ToolOptions): Promise<ToolResult> {
    return this.tool('istioctl', ['--kubeconfig', this.kubeconfig, ...args], options);
  }

  vagrant(args: string[], options?: ToolOptions): Promise<ToolResult> {
    return this.tool('vagrant', args, { cwd: vagrantOf(this.def).dir, ...options });
  }

  /** Whether the lab is a cluster and machines that already run (kind existing), with no Vagrant of its own. */
  get existing(): boolean {
    return this.def.kind === 'existing';
  }

  /** The first Running pod `selector` matches in `namespace`, as the worker keeps it between steps. */
  async podFor(namespace: string, selector: string): Promise<string> {
    const kept = this.pods?.get(this.kubeconfig, namespace, selector);
    if (kept) return kept;
    const found = await this.kubectl(
      [
        '-n',
        namespace,
        'get',
        'pods',
        '-l',
        selector,
        '--field-selector=status.phase=Running',
        '-o',
        'jsonpath={.items[0].metadata.name}',
      ],
      { check: false, timeoutMs: 60_000 },
    );
    const pod = found.stdout.trim();
    if (found.exitCode === 0 && pod) {
      this.pods?.set(this.kubeconfig, namespace, selector, pod);
      return pod;
    }
    if (/array index out of bounds/.test(found.stderr) || found.exitCode === 0)
      throw new ExpectationError(`no Running pod matches ${selector} in namespace ${namespace} yet`);
    throw new LabToolError(['kubectl', 'get', 'pods', '-l', selector], found.exitCode, found.stderr.trim());
  }

  /**
   * Runs `use` with the pod `selector` picks (see podFor). When the command says that pod is not found (it
   * was replaced since it was picked), picks again and runs it once more.
   */
  async inPod<T extends ToolResult>(
    namespace: string,
    selector: string,
    use: (pod: string) => Promise<T>,
  ): Promise<{ pod: string; result: T }> {
    const pod = await this.podFor(namespace, selector);
    const result = await use(pod);
    if (result.exitCode === 0 || !podGone(result.stderr, pod)) return { pod, result };
    this.forgetPods();
    const again = await this.podFor(namespace, selector);
    return { pod: again, result: await use(again) };
  }

  /** Forgets the pod names kept for this lab's cluster: its pods may be replaced now. */
  forgetPods(): void {
    this.pods?.forget(this.kubeconfig);
  }

  /**
   * Where a machine's sshd listens and as whom to log in, from `vagrant ssh-config`. The machines asked for
   * together (in one synchronous pass, as a step reaching several machines at once asks) go to vagrant in
   * one call: on a real lab each call starts Ruby.
   */
  async sshTarget(machine: string): Promise<SshTarget> {
    const { ssh } = this.machine(machine);
    if (ssh) return sshTargetOf(ssh, this.def.file);
    if (this.existing) {
      throw new LabConfigError(
        `machine ${machine} of lab ${this.def.name} has no ssh section, so its shell cannot be reached (${this.def.file})`,
      );
    }
    let batch = this.targetBatch;
    if (!batch) {
      const machines: string[] = [];
      const targets = Promise.resolve().then(() => {
        this.targetBatch = undefined;
        return this.fetchTargets(machines);
      });
      batch = this.targetBatch = { machines, targets };
    }
    if (!batch.machines.includes(machine)) batch.machines.push(machine);
    const target = (await batch.targets).get(machine);
    if (target instanceof Error) throw target;
    if (!target) throw new LabToolError(['vagrant', 'ssh-config', machine], 0, `printed no Host ${machine}`);
    return target;
  }

  /** The machines waiting for one `vagrant ssh-config` call, and its outcome for each. */
  private targetBatch: { machines: string[]; targets: Promise<Map<string, SshTarget | Error>> } | undefined;

  private async fetchTargets(machines: string[]): Promise<Map<string, SshTarget | Error>> {
    if (machines.length === 1) {
      try {
        const { stdout } = await this.vagrant(['ssh-config', machines[0]!]);
        return new Map([[machines[0]!, parseSshConfig(stdout)]]);
      } catch (err) {
        return new Map([[machines[0]!, err instanceof Error ? err : new Error(String(err))]]);
      }
    }
    const all = await this.vagrant(['ssh-config', ...machines], { check: false });
    if (all.exitCode === 0) return parseSshConfigs(all.stdout);
    // Vagrant fails the whole call when one machine cannot be reached: ask for each, so that the others
    // get their target and that one its own error.
    const each = await Promise.all(machines.map((m) => this.fetchTargets([m])));
    return new Map(each.flatMap((m) => [...m]));
  }

  /**
   * Runs `body` with a session to `machine`: the worker's shared connection to it when there is one (the
   * session must not be closed by `body`), else a connection of its own, closed afterwards.
   */
  async withSsh<T>(machine: string, body: (session: SshSession) => Promise<T>): Promise<T> {
    if (this.sshPool) {
      // A machine whose ssh target the lab file names is keyed by that target: two lab files on one cluster
      // (another host key, user or key) never share what the pool keeps.
      const { ssh } = this.machine(machine);
      const lease = await this.sshPool.acquire(
        ssh ? `ssh:${JSON.stringify(ssh)}` : labPlace(this.def),
        machine,
        () => this.sshTarget(machine),
        this.ctx.signal,
      );
      try {
        return await body(lease.session);
      } finally {
        lease.release();
      }
    }
    const session = await SshSession.open(await this.sshTarget(machine), this.ctx.signal);
    try {
      return await body(session);
    } finally {
      session.close();
    }
  }

  /**
   * Forgets what the worker keeps of these machines' ssh (all of the lab's when none named): the VM
   * actions call it before they boot, halt or destroy machines, whose address or sshd may then change.
   */
  forgetSsh(machines?: string[]): void {
    this.sshPool?.forget(labPlace(this.def), machines);
  }

  machine(name: string) {
    const machine = this.def.machines[name];
    if (!machine) {
      throw new LabConfigError(
        `the lab ${this.def.name} has no machine "${name}" (machines: ${Object.keys(this.def.machines).join(', ')})`,
      );
    }
    return machine;
  }

  /** The prefix that runs a command as root on a machine: `sudo -n` unless the lab says `sudo: false`. */
  sudo(name: string): string[] {
    return this.machine(name).sudo ? ['sudo', '-n'] : [];
  }

  /** A file on a machine as a step names it (see namedFile); a purpose the lab does not map is an error. */
  fileOn(machine: string, file: string): string {
    return file.startsWith('/') ? file : this.machineFile(machine, file);
  }

  /** A file path on a machine, by purpose (e.g. `accessLog`). */
  machineFile(name: string, purpose: string): string {
    const file = this.machine(name).files[purpose];
    if (!file)
      throw new LabConfigError(
        `machine ${name} of lab ${this.def.name} has no file "${purpose}" (${this.def.file})`,
      );
    return file;
  }
}

/** The ssh target a lab file names for a machine: paths expanded, the agent from the worker's environment. */
function sshTargetOf(ssh: NonNullable<LabMachine['ssh']>, file: string): SshTarget {
  const target: SshTarget = {
    host: ssh.host,
    port: ssh.port,
    user: ssh.user,
    identityFiles: ssh.identityFile ? [expandPath(ssh.identityFile, file)] : [],
    hostKey: ssh.hostKey,
  };
  if (ssh.agent) {
    const socket = process.env.SSH_AUTH_SOCK;
    if (!socket)
      throw new LabConfigError(`${file} says agent: true, but SSH_AUTH_SOCK is not set for the worker`);
    target.agent = socket;
  }
  return target;
}

/** Whether a kubectl or istioctl error says that the pod is gone (kubectl: `pods "NAME" not found`). */
function podGone(stderr: string, pod: string): boolean {
  return stderr.includes(`pods "${pod}" not found`);
}
