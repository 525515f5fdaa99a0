/**
 * What a run will create and change, step by step, worked out before anything runs from the run's plan
 * and its lab: each action says it for its own input (ActionDefinition.changes). `tunnel-lab run
 * --dry-run` prints it and stops, so that a run on a shared cluster can be read before it is started.
 */
import type { ActionDefinition } from '../../activities/action.js';
import { planSteps, type Plan } from '../../workflows/types.js';
import { InputError } from '../errors.js';
import type { LabDefinition } from '../lab/definition.js';

export interface StepChanges {
  id: string;
  uses: string;
  phase: 'main' | 'finally';
  /** One line per thing the step creates or changes; empty for a step that only reads. */
  changes: string[];
}

/** The changes of every step of `plan`, main steps then finally steps, on `lab`. */
export async function plannedChanges(
  plan: Plan,
  lab: LabDefinition,
  options: { projectRoot: string; actions: readonly ActionDefinition[] },
): Promise<StepChanges[]> {
  const out: StepChanges[] = [];
  for (const { step, phase } of planSteps(plan)) {
    const action = options.actions.find((a) => a.name === step.uses);
    if (!action) throw new InputError(`step ${step.id} uses ${step.uses}, which is no action`);
    const input = action.input.safeParse(step.with);
    if (!input.success) throw new InputError(`step ${step.id}: ${input.error.message}`);
    const changes = await action.changes(input.data, { projectRoot: options.projectRoot, lab });
    out.push({ id: step.id, uses: step.uses, phase, changes });
  }
  return out;
}

/** The listing as `--dry-run` prints it: the steps that change something, then those that only read. */
export function changesText(steps: StepChanges[], lab: LabDefinition): string[] {
  const changing = steps.filter((s) => s.changes.length > 0);
  const reading = steps.filter((s) => s.changes.length === 0);
  const lines = [
    `on lab ${lab.name} (${lab.kind === 'existing' ? 'an existing cluster' : 'Vagrant machines'}, ${lab.file}):`,
  ];
  for (const step of changing) {
    lines.push(`  ${step.phase === 'finally' ? 'finally ' : ''}${step.id} (${step.uses}):`);
    for (const change of step.changes) lines.push(`    - ${change}`);
  }
  if (reading.length > 0) {
    lines.push(`  only read or skipped: ${reading.map((s) => s.id).join(', ')}`);
  }
  return lines;
}
