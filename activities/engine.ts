/** The engine's own activities (not actions a playbook can name). */
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { hostQueue, type Plan, type ScenarioInput } from '../workflows/types.js';
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
      return plan;
    },
  };
}
