/**
 * Keeps a ledger of the activity tasks this worker is running, so that a worker starting after a crashed
 * one can hand the dead worker's steps back to Temporal at once. Without it, Temporal learns that a step's
 * worker is gone only when the step's heartbeat timeout expires (10-30 s), however soon a new worker runs.
 *
 * Each running task is one file holding its task token (which authorises completing that attempt and
 * nothing else; mode 0600) and the pid and start time of the worker running it. A new worker fails the
 * tasks of workers that no longer run (after reapOrphans has stopped their commands) with a retryable
 * failure and a short retry delay; Temporal then retries the step under its own retry policy, so a step
 * that may not be retried blindly (attempts: 1) fails instead of running twice. The token names one
 * attempt: when that attempt has already ended (completed, or timed out and retried), the server refuses
 * it and nothing happens.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import { workerTasksDir } from '../state-layout.js';
import { ActivityNotFoundError, ApplicationFailure, type Client } from './sdk.js';
import { deadWorkersRecords, removeRecord, thisWorker, type WorkerStamp } from './worker-records.js';

/** The failure type of a step whose worker died while running it. */
export const WORKER_DIED = 'WorkerDied';

/** How soon Temporal retries a step handed back from a dead worker (instead of its retry policy's interval). */
const RETRY_DELAY = '200ms';

interface TaskRecord extends WorkerStamp {
  taskToken: string;
  workflowId: string;
  activityId: string;
  activityType: string;
  attempt: number;
}

/** The activity interceptor that records each task while this worker runs it. */
export function taskLedger(stateRoot: string): ActivityInterceptorsFactory {
  const dir = workerTasksDir(stateRoot);
  const worker = thisWorker();
  return (ctx) => ({
    inbound: {
      async execute(input, next) {
        const { info } = ctx;
        const file = path.join(dir, `${createHash('sha256').update(info.taskToken).digest('hex')}.json`);
        const record: TaskRecord = {
          taskToken: Buffer.from(info.taskToken).toString('base64'),
          workflowId: info.workflowExecution?.workflowId ?? '',
          activityId: info.activityId,
          activityType: info.activityType,
          attempt: info.attempt,
          ...worker,
        };
        mkdirSync(dir, { recursive: true, mode: 0o700 });
        writeFileSync(file, JSON.stringify(record), { mode: 0o600 });
        try {
          return await next(input);
        } finally {
          removeRecord(file);
        }
      },
    },
  });
}

/** A step handed back to Temporal, for the worker's log. */
export interface HandedBack {
  workflowId: string;
  activityId: string;
  attempt: number;
  workerPid: number;
}

/**
 * Fails the tasks recorded by workers that no longer run, so that Temporal retries them now; returns the
 * ones it handed back. Tasks of live workers are never touched.
 */
export async function failDeadWorkersTasks(stateRoot: string, client: Client): Promise<HandedBack[]> {
  const handed: HandedBack[] = [];
  const dead = deadWorkersRecords<TaskRecord>(
    workerTasksDir(stateRoot),
    (r) => typeof r.taskToken === 'string',
  );
  for (const { file, record } of dead) {
    const failure = ApplicationFailure.create({
      message: `the worker running this step (pid ${record.workerPid}) died; a new worker handed it back`,
      type: WORKER_DIED,
      nextRetryDelay: RETRY_DELAY,
    });
    try {
      await client.activity.fail(Buffer.from(record.taskToken, 'base64'), failure);
      handed.push({
        workflowId: record.workflowId,
        activityId: record.activityId,
        attempt: record.attempt,
        workerPid: record.workerPid,
      });
    } catch (err) {
      // That attempt has ended already (completed, or timed out and retried): nothing to hand back. Any
      // other error (the server does not answer) keeps the record for the next worker to try.
      if (!(err instanceof ActivityNotFoundError)) continue;
    }
    removeRecord(file);
  }
  return handed;
}
