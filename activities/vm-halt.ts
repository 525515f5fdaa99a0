import { defineAction } from './action.js';
import { machineStates, machinesInput, selectMachines, vmPolicy, noMachines } from './vm-up.js';

/** Output of vm.halt. */
export interface VmHaltOutput {
  halted: string[];
  /** Machines that were powered off already, or never created. */
  alreadyStopped: string[];
}

/** States in which a machine has nothing left to halt. */
const STOPPED = ['poweroff', 'not_created'];

/** Shuts the lab's running machines down (`vagrant halt`), leaving stopped ones alone. */
export const vmHaltAction = defineAction({
  name: 'vm.halt',
  description: "Shut the lab's machines down with vagrant halt (machines already stopped are left alone).",
  input: machinesInput,
  policy: vmPolicy,
  idempotent: true,
  summary: (input) => `vm.halt ${input.machines?.join(' ') ?? 'all machines'}`,
  examples: [
    { description: 'Stop every machine at the end of a run', yaml: 'id: stop-vms\nuses: vm.halt' },
    {
      description: 'Stop the app machine only',
      yaml: 'id: stop-app\nuses: vm.halt\nwith:\n  machines: [external-app]',
    },
  ],
  changes: (input, { lab }) =>
    lab.kind === 'existing'
      ? []
      : [`halt ${input.machines?.join(', ') ?? 'every machine'} of lab ${lab.name}`],
  create: () => async (input, ctx) => {
    const lab = await ctx.lab();
    if (lab.existing) return noMachines(lab);
    const names = selectMachines(lab, input.machines);
    const states = await machineStates(lab);
    const output: VmHaltOutput = {
      halted: names.filter((name) => !STOPPED.includes(states.get(name) ?? '')),
      alreadyStopped: names.filter((name) => STOPPED.includes(states.get(name) ?? '')),
    };
    if (output.halted.length === 0) return output;
    lab.forgetSsh(output.halted);
    // `vagrant halt` exits 0 only once every machine it was given is off (it forces those that do not shut
    // down), so no `vagrant status` (seconds of Ruby on a real lab) follows it; a retry after a failure asks.
    await lab.vagrant(['halt', ...output.halted]);
    return output;
  },
});
