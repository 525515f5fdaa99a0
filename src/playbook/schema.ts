/**
 * The playbook format. The step fields common to every action live here; each action adds its own `with`
 * schema, and the JSON Schema shipped for editors is derived from both.
 */
import { z } from 'zod';
import type { ActionDefinition } from '../../activities/action.js';
import { isDuration } from '../duration.js';
import { matrixSchema } from './matrix.js';

export const duration = z.string().refine(isDuration, 'must be a duration such as 500ms, 30s, 5m or 1h');

export const stepId = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_-]*$/, 'must be letters, digits, - and _ (starting with a letter or digit)')
  .describe('Unique id of the step in the playbook; also its activity id.');

export const retryOverride = z
  .object({
    attempts: z.number().int().min(1).describe('Total attempts, the first included.'),
    interval: duration.optional().describe('Wait before the first retry.'),
    backoff: z.number().min(1).optional().describe('Multiplier of the wait after each retry.'),
    maxInterval: duration.optional().describe('Longest wait between retries.'),
  })
  .strict()
  .describe("Overrides the action's retry policy (within the action's cap on attempts).");

export const stepFields = {
  id: stepId,
  name: z.string().optional().describe('Human name shown in progress and reports.'),
  timeout: duration
    .optional()
    .describe("Timeout of one attempt; overrides the action's default within its cap."),
  retry: retryOverride.optional(),
  continueOnError: z.boolean().default(false).describe('A failure of this step does not stop the run.'),
};

/** A step before its action is known: `with` is checked against the action's schema afterwards. */
export const genericStep = z
  .object({
    ...stepFields,
    uses: z.string().describe('The action to run.'),
    with: z.record(z.string(), z.unknown()).default({}).describe("The action's inputs."),
  })
  .strict();

/** A `parallel:` group of `member` steps: unchecked ones for the loader's first pass, the step union for editors. */
export function groupSchema<M extends z.ZodType>(member: M) {
  return z
    .object({
      id: stepId,
      name: z.string().optional(),
      parallel: z.array(member).min(1).describe('Steps that run at the same time.'),
    })
    .strict();
}

export const playbookFields = {
  name: z
    .string()
    .regex(/^[a-z0-9][a-z0-9-]*$/, 'must be lowercase letters, digits and -')
    .describe('Name of the playbook (runs are filtered by it).'),
  description: z.string().optional(),
  lab: z
    .string()
    .optional()
    .describe('Lab definition the lab actions drive (a name in labs/), unless the run names one.'),
  vars: z
    .record(z.string(), z.unknown())
    .default({})
    .describe('Values for ${{ vars.NAME }}; a run may override them.'),
  onFailure: z
    .enum(['fail', 'pause'])
    .default('fail')
    .describe('What a step that still fails after its retries does: fail the run, or pause it for a resume.'),
  matrix: matrixSchema.optional(),
};

/** The top level, with steps left for a second pass. */
export const playbookShape = z
  .object({
    ...playbookFields,
    steps: z.array(z.unknown()).min(1).describe('Steps, run in order; `parallel:` groups run together.'),
    finally: z
      .array(z.unknown())
      .default([])
      .describe('Steps that always run at the end, also after failure or cancellation.'),
  })
  .strict();

/** A playbook that runs another's steps with its own name, defaults and matrix (`extends: NAME`). */
export const extendsField = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]*$/, 'must be the name of a playbook in the same folder')
  .describe(
    "A playbook in the same folder whose steps and finally steps this one runs; this one's vars set new defaults of the vars it declares.",
  );
export const extendingShape = z.object({ ...playbookFields, extends: extendsField }).strict();

/** The full schema with one branch per action; used to generate the JSON Schema for editors. */
export function playbookSchema(actions: readonly ActionDefinition[]): z.ZodType {
  const steps = actions.map((action) =>
    z
      .object({
        ...stepFields,
        uses: z.literal(action.name).describe(action.description),
        with: action.input,
      })
      .strict(),
  );
  const step =
    steps.length === 1 ? steps[0]! : z.union(steps as unknown as [z.ZodType, z.ZodType, ...z.ZodType[]]);
  const group = groupSchema(step);
  const full = z
    .object({
      ...playbookFields,
      steps: z.array(z.union([step, group])).min(1),
      finally: z.array(step).default([]),
    })
    .strict();
  return z.union([full, extendingShape]);
}

export function playbookJsonSchema(actions: readonly ActionDefinition[]): Record<string, unknown> {
  const schema = z.toJSONSchema(playbookSchema(actions), { io: 'input', unrepresentable: 'any' });
  return {
    ...schema,
    title: 'tunnel-lab playbook',
  };
}
