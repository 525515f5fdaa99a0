import { defineAction } from './action.js';
import { machineStates, machinesInput, selectMachines, vmPolicy, noMachines } from './vm-up.js';

/** Output of vm.destroy. */
export interface VmDestroyOutput {
  destroyed: string[];
  /** Machines that did not exist. */
  alreadyAbsent: string[];
}

/** Deletes the lab's machines (`vagrant destroy -f`), leaving machines that do not exist alone. */
export const vmDestroyAction = defineAction({
  name: 'vm.destroy',
  description: "Delete the lab's machines with vagrant destroy -f (machines never created are left alone).",
  input: machinesInput,
  policy: vmPolicy,
  idempotent: true,
  summary: (input) => `vm.destroy ${input.machines?.join(' ') ?? 'all machines'}`,
  examples: [
    { description: 'Remove every machine in a finally step', yaml: 'id: destroy-vms\nuses: vm.destroy' },
    {
      description: 'Rebuild the app machine from scratch (then vm.up it)',
      yaml: 'id: destroy-app\nuses: vm.destroy\nwith:\n  machines: [external-app]',
    },
  ],
  changes: (input, { lab }) =>
    lab.kind === 'existing'
      ? []
      : [`destroy ${input.machines?.join(', ') ?? 'every machine'} of lab ${lab.name}`],
  create: () => async (input, ctx) => {
    const lab = await ctx.lab();
    if (lab.existing) return noMachines(lab);
    const names = selectMachines(lab, input.machines);
    const states = await machineStates(lab);
    const output: VmDestroyOutput = {
      destroyed: names.filter((name) => (states.get(name) ?? 'not_created') !== 'not_created'),
      alreadyAbsent: names.filter((name) => (states.get(name) ?? 'not_created') === 'not_created'),
    };
    if (output.destroyed.length === 0) return output;
    lab.forgetSsh(output.destroyed);
    // `vagrant destroy -f` exits 0 only once every machine it was given is gone, so no `vagrant status`
    // (seconds of Ruby on a real lab) follows it; a retry after a failure asks.
    await lab.vagrant(['destroy', '-f', ...output.destroyed]);
    return output;
  },
});
