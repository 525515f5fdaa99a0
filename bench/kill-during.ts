/**
 * One worker kill, as bench/worker-kill.ts and test/worker-kill.test.ts make it: a run of a playbook on a
 * worker process, SIGKILLed the moment a given step shows in the workers' task ledger (so even short steps
 * are caught running), and a new worker spawned at once; then, from the run's history, how soon the killed
 * step started again and which other steps needed another attempt or a second activity.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { tsToMs } from '@temporalio/common/lib/time.js';
import proto from '@temporalio/proto';
import { startScenario } from '../src/client.js';
import { workerTasksDir } from '../src/state-layout.js';
import { stepOfActivity, type ScenarioResult } from '../workflows/types.js';

const EventType = proto.temporal.api.enums.v1.EventType;

export interface KillOptions {
  root: string;
  /** The Temporal server's address. */
  address: string;
  playbook: string;
  lab: string;
  /** The step during which the worker dies. */
  step: string;
}

export interface KillResult {
  step: string;
  /** Whether the step was caught running (a step may end before the ledger is read). */
  caught: boolean;
  /** `passed`, `failed`, or the error that ended the run. */
  status: string;
  /** Milliseconds from the new worker's spawn to the killed step's next start. */
  restartMs?: number;
  /** Other steps that needed another attempt (a probe may, while the mesh settles). */
  retried: string[];
  /** Other steps whose activity was scheduled more than once: a completed step run again. */
  rescheduled: string[];
}

/** A worker process, its output appended to `<stateRoot>/worker.log`. */
export function startWorker(
  root: string,
  address: string,
  stateRoot: string,
  taskQueue: string,
): ChildProcess {
  const log = openSync(path.join(stateRoot, 'worker.log'), 'a');
  const child = spawn(process.execPath, [path.join(root, 'dist', 'src', 'worker', 'main.js')], {
    env: {
      ...process.env,
      TEMPORAL_ADDRESS: address,
      TEMPORAL_TASK_QUEUE: taskQueue,
      TUNNEL_LAB_STATE: stateRoot,
    },
    stdio: ['ignore', log, log],
  });
  closeSync(log);
  return child;
}

/** Resolves once the process has exited. */
export function stopped(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise((resolve) => child.once('exit', () => resolve()));
}

/** Resolves once a task of `step` shows in the ledger (polled every 10 ms); false if the run ended first. */
async function stepRunning(stateRoot: string, step: string, ended: () => boolean): Promise<boolean> {
  const dir = workerTasksDir(stateRoot);
  while (!ended()) {
    if (existsSync(dir)) {
      for (const entry of readdirSync(dir)) {
        try {
          const record = JSON.parse(readFileSync(path.join(dir, entry), 'utf8')) as { activityId?: string };
          if (record.activityId && stepOfActivity(record.activityId) === step) return true;
        } catch {
          // Written or removed this very moment.
        }
      }
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  return false;
}

/** Runs the playbook, kills its worker during `step`, and reads how the run recovered. */
export async function killDuring(client: Client, options: KillOptions): Promise<KillResult> {
  const { root, address, step } = options;
  const stateRoot = await mkdtemp(path.join(os.tmpdir(), 'kill-during-'));
  const taskQueue = `kill-during-${Date.now()}`;
  let worker = startWorker(root, address, stateRoot, taskQueue);
  let spawned = 0;
  let caught = false;
  let status: string;
  const handle = await startScenario(client, taskQueue, { playbook: options.playbook, lab: options.lab });
  try {
    let ended = false;
    const result = (handle.result() as Promise<ScenarioResult>).finally(() => (ended = true));
    caught = await stepRunning(stateRoot, step, () => ended);
    if (caught) {
      worker.kill('SIGKILL');
      await stopped(worker);
      spawned = Date.now();
      worker = startWorker(root, address, stateRoot, taskQueue);
    }
    status = await result.then(
      (r) => r.status,
      (err: unknown) => `failed: ${err instanceof Error ? err.message : String(err)}`,
    );
  } finally {
    worker.kill('SIGTERM');
    await stopped(worker);
  }

  // Each step's activities, the attempt each ended on and when that attempt started (Temporal records one
  // started event per activity, for its last attempt).
  const starts = new Map<string, { at: number; attempt: number }[]>();
  const scheduled = new Map<number, string>();
  for (const event of (await handle.fetchHistory()).events ?? []) {
    if (event.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED) {
      scheduled.set(
        Number(event.eventId),
        stepOfActivity(event.activityTaskScheduledEventAttributes!.activityId!),
      );
    }
    if (event.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED) {
      const attrs = event.activityTaskStartedEventAttributes!;
      const of = scheduled.get(Number(attrs.scheduledEventId))!;
      starts.set(of, [
        ...(starts.get(of) ?? []),
        { at: tsToMs(event.eventTime), attempt: attrs.attempt ?? 1 },
      ]);
    }
  }
  const restart = caught
    ? (starts.get(step) ?? []).find((r) => r.attempt > 1 || r.at >= spawned)?.at
    : undefined;
  const others = [...starts].filter(([id]) => id !== step);
  return {
    step,
    caught,
    status,
    ...(restart !== undefined ? { restartMs: restart - spawned } : {}),
    retried: others.filter(([, runs]) => runs.some((r) => r.attempt > 1)).map(([id]) => id),
    rescheduled: others.filter(([, runs]) => runs.length > 1).map(([id]) => id),
  };
}
