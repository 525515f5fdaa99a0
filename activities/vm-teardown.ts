import { z } from 'zod';
import { defineAction } from './action.js';
import { vmDestroyAction } from './vm-destroy.js';
import { vmHaltAction } from './vm-halt.js';
import { vmPolicy } from './vm-up.js';

export const vmTeardownInput = z
  .object({
    mode: z
      .enum(['keep', 'halt', 'destroy'])
      .describe('keep: leave the machines running; halt: shut them down; destroy: remove them.'),
    machines: z.array(z.string()).optional().describe("Machines to act on; all of the lab's by default."),
  })
  .strict();

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
  examples: [
    {
      description: 'Honour the teardown variable at the end of a playbook',
      yaml: 'id: teardown\nuses: vm.teardown\nwith: { mode: "${{ vars.teardown }}" }',
    },
  ],
  create: (deps) => {
    const halt = vmHaltAction.create(deps);
    const destroy = vmDestroyAction.create(deps);
    return async (input, ctx) => {
      const machines = input.machines ? { machines: input.machines } : {};
      if (input.mode === 'halt') return { mode: input.mode, ...(await halt(machines, ctx)) };
      if (input.mode === 'destroy') return { mode: input.mode, ...(await destroy(machines, ctx)) };
      return { mode: input.mode };
    };
  },
});
