/**
 * Builds every activity the worker registers: one per action (wrapped so that each returns its attempt
 * and fails with a typed ApplicationFailure), plus the engine's own `loadPlaybook`.
 */
import { mkdir } from 'node:fs/promises';
import { ApplicationFailure, CancelledFailure, Context } from '@temporalio/activity';
import type { StepOutcome } from '../workflows/types.js';
import { InputError } from '../src/errors.js';
import { runDir } from '../src/state-layout.js';
import { loadRunLab } from '../src/lab/definition.js';
import { LabRuntime } from '../src/lab/runtime.js';
import {
  NotApplicable,
  type ActionContext,
  type ActionDefinition,
  type ActionDeps,
  type StepMeta,
} from './action.js';
import { createEngineActivities } from './engine.js';
import { actions } from './registry.js';

export type { ActionDeps } from './action.js';

export function createActivities(deps: ActionDeps): Record<string, (...args: never[]) => Promise<unknown>> {
  const activities: Record<string, (...args: never[]) => Promise<unknown>> = {
    ...createEngineActivities(deps),
  };
  for (const action of actions) activities[action.name] = toActivity(action, deps);
  return activities;
}

/** The Temporal activity for one action: validates its input, runs it, and types its failures. */
export function toActivity(
  action: ActionDefinition,
  deps: ActionDeps,
): (input: unknown, meta?: StepMeta) => Promise<StepOutcome> {
  const run = action.create(deps);
  return async (raw, meta = {}) => {
    const context = Context.current();
    const { info } = context;
    const attempt = info.attempt;
    const workflowId = info.workflowExecution?.workflowId ?? 'standalone';
    try {
      const parsed = action.input.safeParse(raw);
      if (!parsed.success) throw new InputError(`invalid input for ${action.name}: ${parsed.error.message}`);
      const stateDir = runDir(deps.stateRoot, workflowId);
      await mkdir(stateDir, { recursive: true });
      let lab: Promise<LabRuntime> | undefined;
      const ctx: ActionContext = {
        stateDir,
        log: context.log,
        heartbeat: (details) => context.heartbeat(details),
        signal: context.cancellationSignal,
        run: {
          workflowId,
          runId: info.workflowExecution?.runId ?? '',
          stepId: info.activityId,
          attempt,
          ...(meta.scenario ? { scenario: meta.scenario } : {}),
        },
        lab: () => {
          lab ??= loadRunLab(meta, deps, workflowId).then(async (def) => {
            // The simulated lab runs its tools in this folder, so it must exist before the first one runs.
            await mkdir(def.stateDir, { recursive: true });
            return new LabRuntime(def, ctx, deps.sshPool, deps.pods);
          });
          return lab;
        },
      };
      const output = await run(parsed.data, ctx);
      if (output instanceof NotApplicable) {
        ctx.log.info(`${action.name}: skipped: ${output.reason}`);
        return { output: { skipped: output.reason }, attempt, skipped: output.reason };
      }
      const evidence = action.evidence?.(output, parsed.data) ?? [];
      return { output, attempt, ...(evidence.length > 0 ? { evidence } : {}) };
    } catch (err) {
      throw toFailure(err, action, attempt);
    }
  };
}

function toFailure(err: unknown, action: ActionDefinition, attempt: number): unknown {
  if (err instanceof CancelledFailure || err instanceof ApplicationFailure) return err;
  const error = err instanceof Error ? err : new Error(String(err));
  const nonRetryable =
    (error as { nonRetryable?: boolean }).nonRetryable === true ||
    (action.policy.nonRetryable ?? []).includes(error.name);
  return ApplicationFailure.create({
    message: error.message,
    type: error.name,
    nonRetryable,
    details: [{ attempt }],
    cause: error,
  });
}
