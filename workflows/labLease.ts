/**
 * The `labLease` workflow: while it runs, one run holds a lab. Its workflow id is the lab's lease id, and
 * Temporal starts at most one open workflow per id, so a second run that tries to start it learns that the
 * lab is taken. It is a child of the run holding the lab, started with the parent-close policy TERMINATE:
 * the server ends it with its holder however the holder ends (completed, failed, cancelled, terminated,
 * timed out), so a lab is never left held by a run that no longer exists. The holder ends it earlier with
 * the `release` signal, once its `finally` steps are over.
 */
import { condition, defineSignal, setCurrentDetails, setHandler } from '@temporalio/workflow';
import { RELEASE_LAB, type LabLeaseInput } from './types.js';

export const releaseLab = defineSignal(RELEASE_LAB);

export async function labLease(input: LabLeaseInput): Promise<void> {
  let released = false;
  setHandler(releaseLab, () => {
    released = true;
  });
  setCurrentDetails(`Lab **${input.lab}** (${input.where}) is held by run \`${input.holder}\`.`);
  await condition(() => released);
}
