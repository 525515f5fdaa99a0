/**
 * The engine's activities around a lab's lease (see workflows/labLease.ts): which lab a run drives, who
 * holds it, and waiting until its holder lets it go.
 */
import os from 'node:os';
import { Context } from '@temporalio/activity';
import { loadRunLab } from '../src/lab/definition.js';
import { labIdentity } from '../src/lab/lease.js';
import { runLabDir } from '../src/state-layout.js';
import type { LabHolder, LabIdentity, StepMeta } from '../workflows/types.js';
import type { ActionDeps } from './action.js';

/** How often a waiting run asks whether the lab's lease has ended. */
const POLL_MS = 500;

export function createLabLeaseActivities(deps: ActionDeps) {
  return {
    /** The lab the run's steps drive, resolved on the host that runs them (where its folders are). */
    async labIdentity(meta: StepMeta): Promise<LabIdentity> {
      const workflowId = Context.current().info.workflowExecution?.workflowId ?? 'standalone';
      const def = await loadRunLab(meta, deps, workflowId);
      return labIdentity(def, runLabDir(deps.stateRoot, workflowId), deps.labHost ?? os.hostname());
    },

    /** Whether the lab's lease is open, and the run holding it (the lease's parent). */
    async labHolder(leaseId: string): Promise<LabHolder> {
      const lease = await openLease(leaseId);
      if (!lease) return { held: false };
      const heldBy = lease.parentExecution?.workflowId;
      return heldBy ? { held: true, heldBy } : { held: true };
    },

    /** Returns once the lease is no longer open; cancellable, and heartbeating while it waits. */
    async awaitLabRelease(leaseId: string): Promise<void> {
      const context = Context.current();
      while (await openLease(leaseId)) {
        context.heartbeat();
        await context.sleep(POLL_MS);
      }
    },
  };
}

async function openLease(leaseId: string) {
  try {
    const description = await Context.current().client.workflow.getHandle(leaseId).describe();
    return description.status.name === 'RUNNING' ? description : undefined;
  } catch (err) {
    if ((err as Error).name === 'WorkflowNotFoundError') return undefined;
    throw err;
  }
}
