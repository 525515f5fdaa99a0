import { mkdir } from 'node:fs/promises';
import { z } from 'zod';
import { ExpectationError, LabToolError } from '../src/errors.js';
import { expectedMarker, MARKER_FILE, markerProblem, parseMarker } from '../src/lab/provisioning.js';
import { vagrantOf } from '../src/lab/definition.js';
import type { LabRuntime } from '../src/lab/runtime.js';
import {
  defineAction,
  notApplicable,
  type ActionContext,
  type ActionPolicy,
  type NotApplicable,
} from './action.js';

/** What the VM actions answer on a lab of kind existing: a step with nothing to do, and why. */
export function noMachines(lab: LabRuntime): NotApplicable {
  return notApplicable(
    `the lab ${lab.def.name} is a cluster and machines that already run (kind: existing): it has no machines of its own`,
  );
}

/** One line of Vagrant's `--machine-readable` output: `timestamp,target,type,data...`. */
export interface MachineReadableLine {
  target: string;
  type: string;
  data: string[];
}

/** Parses `--machine-readable` output; commas and newlines inside data come back unescaped. */
export function parseMachineReadable(text: string): MachineReadableLine[] {
  const lines: MachineReadableLine[] = [];
  for (const raw of text.split('\n')) {
    const fields = raw.trim().split(',');
    if (fields.length < 3 || !/^\d+$/.test(fields[0]!)) continue;
    const [, target, type, ...data] = fields;
    lines.push({
      target: target!,
      type: type!,
      data: data.map((d) =>
        d
          .replace(/%!\(VAGRANT_COMMA\)/g, ',')
          .replace(/\\n/g, '\n')
          .replace(/\\r/g, '\r'),
      ),
    });
  }
  return lines;
}

/** Each machine's state (`running`, `poweroff`, `not_created`, `aborted`, ...) from `vagrant status`. */
export async function machineStates(lab: LabRuntime): Promise<Map<string, string>> {
  // A simulated lab's vagrant runs in the lab state folder, which may not exist yet in a fresh run.
  await mkdir(lab.def.stateDir, { recursive: true });
  const { stdout } = await lab.vagrant(['status', '--machine-readable']);
  const states = new Map<string, string>();
  for (const line of parseMachineReadable(stdout)) {
    if (line.type === 'state' && line.target) states.set(line.target, line.data[0] ?? '');
  }
  return states;
}

/** The machines a step names (all of the lab's when none), each checked against the lab definition. */
export function selectMachines(lab: LabRuntime, machines: string[] | undefined): string[] {
  const names = machines && machines.length > 0 ? [...new Set(machines)] : Object.keys(lab.def.machines);
  for (const name of names) lab.machine(name);
  return names;
}

/** Fails (retryably) when a machine is not in the state an action left it in. */
async function expectStates(
  lab: LabRuntime,
  names: string[],
  wanted: string[],
  action: string,
): Promise<void> {
  const states = await machineStates(lab);
  const wrong = names.filter((name) => !wanted.includes(states.get(name) ?? 'unknown'));
  if (wrong.length > 0) {
    throw new ExpectationError(
      `after vagrant ${action}: ${wrong.map((n) => `${n} is ${states.get(n) ?? 'not listed'}`).join(', ')}; expected ${wanted.join(' or ')}`,
    );
  }
}

/** Input of the VM actions: which machines. */
export const machinesInput = z
  .object({
    machines: z
      .array(z.string().min(1).describe('A machine name of the lab definition.'))
      .optional()
      .describe("Machines to act on, by name; all of the lab's machines when omitted."),
  })
  .strict();

/** Policy shared by the VM actions: long attempts with a heartbeat while vagrant runs. */
export const vmPolicy: ActionPolicy = {
  timeout: '30m',
  maxTimeout: '2h',
  heartbeatTimeout: '30s',
  retry: { attempts: 3, initialInterval: '10s', backoff: 2, maxInterval: '2m' },
  maxAttempts: 10,
};

/** Output of vm.up. */
export interface VmUpOutput {
  started: string[];
  alreadyRunning: string[];
  /** The box added before booting, when the lab's box was missing. */
  boxAdded?: string;
  /** Machines provisioned again because their provisioning marker was missing or stale. */
  reprovisioned?: Reprovisioned[];
}

export interface Reprovisioned {
  machine: string;
  reason: string;
}

interface BoxEntry {
  name?: string;
  provider?: string;
  version?: string;
}

async function installedBoxes(lab: LabRuntime): Promise<BoxEntry[]> {
  const { stdout } = await lab.vagrant(['box', 'list', '--machine-readable']);
  const boxes: BoxEntry[] = [];
  for (const line of parseMachineReadable(stdout)) {
    if (line.type === 'box-name') boxes.push({ name: line.data[0] });
    else if (line.type === 'box-provider' && boxes.length > 0) boxes.at(-1)!.provider = line.data[0];
    else if (line.type === 'box-version' && boxes.length > 0) boxes.at(-1)!.version = line.data[0];
  }
  return boxes;
}

/**
 * Adds the lab's box once before any machine boots: parallel `vagrant up` processes would each try to
 * download it and trip over each other's download.
 */
async function ensureBox(lab: LabRuntime, boxes: BoxEntry[]): Promise<string | undefined> {
  const { box, boxVersion, provider } = vagrantOf(lab.def);
  if (!box) return undefined;
  const present = boxes.some(
    (b) => b.name === box && b.provider === provider && (!boxVersion || b.version === boxVersion),
  );
  if (present) return undefined;
  const args = [
    'box',
    'add',
    box,
    ...(boxVersion ? ['--box-version', boxVersion] : []),
    '--provider',
    provider,
  ];
  const added = await lab.vagrant(args, { check: false });
  if (added.exitCode === 0) return `${box}${boxVersion ? ` ${boxVersion}` : ''} (${provider})`;
  const detail = (added.stderr || added.stdout).trim();
  // Another run may have added it since we looked; that is what we wanted.
  if (/already exists/.test(detail)) return undefined;
  throw new LabToolError(['vagrant', ...args], added.exitCode, detail.slice(-600));
}

/** Boots the lab's machines that are not running (in parallel where the provider allows it). */
export const vmUpAction = defineAction({
  name: 'vm.up',
  description:
    "Boot the lab's machines with one vagrant up (only those not running; the box is added first if missing; " +
    'in parallel, except on VirtualBox), then provision again any machine whose provisioning marker is missing ' +
    'or stale (pinned versions, provision script, certificates).',
  input: machinesInput,
  policy: vmPolicy,
  idempotent: true,
  summary: (input) => `vm.up ${input.machines?.join(' ') ?? 'all machines'}`,
  evidence: (output: VmUpOutput) =>
    (output.reprovisioned ?? []).map((r) => `provisioned ${r.machine} again: ${r.reason}`),
  examples: [
    { description: 'Boot every machine of the lab', yaml: 'id: vms\nuses: vm.up\ntimeout: 45m' },
    {
      description: 'Boot only the Kubernetes machine',
      yaml: 'id: k8s-vm\nuses: vm.up\nwith:\n  machines: [k8s]',
    },
  ],
  changes: (input, { lab }) =>
    lab.kind === 'existing'
      ? []
      : [
          `boot (vagrant up) and provision ${input.machines?.join(', ') ?? 'every machine'} of lab ${lab.name}, unless running and provisioned`,
        ],
  create: () => async (input, ctx) => {
    const lab = await ctx.lab();
    if (lab.existing) return noMachines(lab);
    const vagrant = vagrantOf(lab.def);
    const names = selectMachines(lab, input.machines);
    // The box list is only needed when a machine boots, but asked beside the states it costs no wait.
    const [states, boxes] = await Promise.all([
      machineStates(lab),
      vagrant.box ? installedBoxes(lab) : Promise.resolve([]),
    ]);
    const alreadyRunning = names.filter((name) => states.get(name) === 'running');
    const toStart = names.filter((name) => states.get(name) !== 'running');
    const output: VmUpOutput = { started: toStart, alreadyRunning };
    if (toStart.length > 0) {
      const boxAdded = await ensureBox(lab, boxes);
      if (boxAdded) output.boxAdded = boxAdded;
      const { provider } = vagrant;
      ctx.log.info('booting machines', { machines: toStart, provider });
      lab.forgetSsh(toStart);
      // One process for all machines: Vagrant boots them in parallel where the provider can (libvirt) and
      // one after the other where it cannot (VirtualBox). Separate processes would race on the box's first
      // upload to libvirt's storage pool (vagrant-libvirt locks per process).
      await lab.vagrant(['up', '--provider', provider, ...toStart]);
    }
    let reprovisioned: Reprovisioned[];
    try {
      // Reading each machine's provisioning marker over ssh also shows that it runs: `vagrant up` exits 0
      // only when every machine booted, so no `vagrant status` (seconds of Ruby on a real lab) follows it.
      reprovisioned = await heal(lab, names, ctx);
    } catch (err) {
      // A machine that cannot be reached after booting: say which one is not running, if vagrant knows.
      if (toStart.length > 0) await expectStates(lab, names, ['running'], 'up');
      throw err;
    }
    if (reprovisioned.length > 0) output.reprovisioned = reprovisioned;
    return output;
  },
});

/**
 * Provisions again the machines whose marker is missing or stale: Vagrant provisions a machine only when it
 * is first created, so a kept machine would otherwise keep what an earlier run (or a failed provisioning)
 * left, such as external-app's temporary certificate.
 */
async function heal(lab: LabRuntime, names: string[], ctx: ActionContext): Promise<Reprovisioned[]> {
  const stale = await staleMachines(lab, names, ctx);
  if (stale.length === 0) return [];
  const machines = stale.map((s) => s.machine);
  ctx.log.info('provisioning again', { machines: stale });
  // On libvirt the certificates reach external-app by rsync, which only `vagrant up` and `vagrant rsync` run.
  const synced = machines.filter((name) => lab.machine(name).role === 'app');
  if (vagrantOf(lab.def).provider === 'libvirt' && synced.length > 0) await lab.vagrant(['rsync', ...synced]);
  lab.forgetSsh(machines);
  await lab.vagrant(['provision', ...machines]);
  const still = await staleMachines(lab, machines, ctx);
  if (still.length > 0) {
    throw new ExpectationError(
      `after vagrant provision: ${still.map((s) => `${s.machine}: ${s.reason}`).join('; ')}`,
    );
  }
  return stale;
}

/** The machines whose provisioning marker does not say what the lab expects, and why. */
async function staleMachines(lab: LabRuntime, names: string[], ctx: ActionContext): Promise<Reprovisioned[]> {
  // The machines are read at once: each read may first ask vagrant for the machine's ssh-config.
  const problems = await Promise.all(
    names.map(async (name) => {
      const file = lab.machine(name).files.provisioned ?? MARKER_FILE;
      const read = await lab.withSsh(name, (ssh) => ssh.run(['cat', file], ctx.signal));
      if (read.code !== 0 && !/No such file/i.test(read.stderr))
        throw new LabToolError(['cat', file], read.code, read.stderr.trim());
      const actual = read.code === 0 ? parseMarker(read.stdout) : undefined;
      const reason = markerProblem(await expectedMarker(lab.def, name), actual);
      return reason ? { machine: name, reason } : undefined;
    }),
  );
  return problems.filter((p): p is Reprovisioned => p !== undefined);
}
