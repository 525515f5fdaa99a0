/** The engine's own activities (not actions a playbook can name). */
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { hostQueue, type Plan, type PlannedChanges, type ScenarioInput } from '../workflows/types.js';
import { loadRunLab, type LabDefinition } from '../src/lab/definition.js';
import { plannedChanges } from '../src/playbook/changes.js';
import { loadPlaybookFile, runPlaybookFile } from '../src/playbook/load.js';
import type { ActionDeps } from './action.js';
import { createLabLeaseActivities } from './lab-lease.js';
import { actions } from './registry.js';

export function createEngineActivities(deps: ActionDeps) {
  const playbooksDir = path.join(deps.projectRoot, 'playbooks');
  const dirs = [playbooksDir, ...(deps.playbookDirs ?? [])];
  return {
    ...createLabLeaseActivities(deps),
    /** Loads and validates the playbook on the worker; a bad file fails with PlaybookError (not retried). */
    async loadPlaybook(input: ScenarioInput): Promise<Plan> {
      const file = runPlaybookFile(input.playbook, dirs);
      const plan = await loadPlaybookFile(file, {
        playbooksDir,
        actions,
        vars: input.vars ?? {},
        ...(input.cell !== undefined ? { cell: input.cell } : {}),
      });
      if (input.lab) plan.lab = input.lab;
      const host = input.labHost ?? deps.labHost;
      if (host) plan.stepQueue = hostQueue(Context.current().info.taskQueue, host);
      if (!plan.matrix) {
        const changes = await sharedClusterChanges(plan, deps);
        if (changes) plan.changes = changes;
      }
      return plan;
    },
  };
}

/**
 * On a lab of kind existing, what the run's steps will create and change there, for the run's record and
 * the Web UI. Other labs are the run's or the project's own: their runs skip the work. A lab this worker
 * cannot load (it lives on another lab host) is listed by `tunnel-lab run --dry-run` there instead.
 */
async function sharedClusterChanges(plan: Plan, deps: ActionDeps): Promise<PlannedChanges | undefined> {
  const workflowId = Context.current().info.workflowExecution?.workflowId ?? 'standalone';
  let lab: LabDefinition;
  try {
    lab = await loadRunLab(plan, deps, workflowId);
  } catch {
    return undefined;
  }
  if (lab.kind !== 'existing') return undefined;
  const steps = await plannedChanges(plan, lab, { projectRoot: deps.projectRoot, actions });
  return {
    lab: lab.name,
    steps: steps.filter((s) => s.changes.length > 0).map(({ id, changes }) => ({ id, changes })),
  };
}
