import { z } from 'zod';
import type { LabDefinition } from '../src/lab/definition.js';
import { within } from '../src/paths.js';
import { defineAction, type NotApplicable } from './action.js';
import { vmDestroyAction } from './vm-destroy.js';
import { vmHaltAction } from './vm-halt.js';
import { noMachines, vmPolicy } from './vm-up.js';

export const vmTeardownInput = z
  .object({
    mode: z
      .enum(['keep', 'halt', 'destroy'])
      .describe(
        'keep: leave the machines running (a lab whose machines live in the run folder is halted: nothing could reuse it); halt: shut them down; destroy: remove them.',
      ),
    machines: z.array(z.string()).optional().describe("Machines to act on; all of the lab's by default."),
  })
  .strict();

/** What vm.teardown did; `requested` and `note` when it did other than asked, and why. */
export interface VmTeardownOutput {
  mode: 'keep' | 'halt' | 'destroy';
  requested?: 'keep';
  note?: string;
}

/** True when the lab's machines (its Vagrant folder) live inside the state folder of a run-long lab. */
function livesInRun(def: LabDefinition): boolean {
  return def.lifetime === 'run' && def.vagrant !== undefined && within(def.stateDir, def.vagrant.dir);
}

/**
 * Leaves the lab as a playbook's `teardown` variable says: one step that `finally` blocks can use
 * whatever the user chose, since playbooks have no conditionals.
 */
export const vmTeardownAction = defineAction({
  name: 'vm.teardown',
  description: 'Leave the lab machines running, halted or destroyed, as the playbook or run chooses.',
  input: vmTeardownInput,
  policy: vmPolicy,
  idempotent: true,
  summary: (input) => `vm.teardown ${input.mode} ${input.machines?.join(' ') ?? 'all machines'}`,
  evidence: (output: VmTeardownOutput) => (output.note ? [output.note] : []),
  examples: [
    {
      description: 'Honour the teardown variable at the end of a playbook',
      yaml: 'id: teardown\nuses: vm.teardown\nwith: { mode: "${{ vars.teardown }}" }',
    },
  ],
  changes: (input, { lab }) => {
    const machines = `${input.machines?.join(', ') ?? 'every machine'} of lab ${lab.name}`;
    if (lab.kind === 'existing') return [];
    if (input.mode !== 'keep') return [`${input.mode} ${machines}`];
    return livesInRun(lab) ? [`halt ${machines}: they live in this run's folder`] : [];
  },
  create: (deps) => {
    const halt = vmHaltAction.create(deps);
    const destroy = vmDestroyAction.create(deps);
    return async (input, ctx): Promise<VmTeardownOutput | NotApplicable> => {
      const lab = await ctx.lab();
      if (lab.existing) return noMachines(lab);
      const machines = input.machines ? { machines: input.machines } : {};
      if (input.mode === 'keep') {
        if (!livesInRun(lab.def)) return { mode: input.mode };
        // Nothing can reuse machines that live in this run's own folder: kept, they would only go on running.
        const note =
          `the lab's machines live in this run's folder (lifetime: run), where no later run finds them, ` +
          `so they are halted; a lab file with lifetime: lab keeps them for the next run`;
        ctx.log.info(`vm.teardown: ${note}`);
        return { mode: 'halt' as const, requested: input.mode, note, ...(await halt(machines, ctx)) };
      }
      if (input.mode === 'halt') return { mode: input.mode, ...(await halt(machines, ctx)) };
      return { mode: input.mode, ...(await destroy(machines, ctx)) };
    };
  },
});
