/** Builds a worker for the `tunnelScenario` workflow and every action's activity. */
import { existsSync, readdirSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities, type ActionDeps } from '../../activities/index.js';
import { hostQueue } from '../../workflows/types.js';
import { workflowBundlePath } from '../config.js';
import { reapOrphans } from './orphans.js';
import { failDeadWorkersTasks, taskLedger } from './task-ledger.js';
import { ensureSearchAttributes } from '../temporal/search-attributes.js';

export interface CreateWorkerOptions {
  address: string;
  namespace: string;
  taskQueue: string;
  deps: ActionDeps;
  /** Extra worker options (tests shorten timeouts, the bench tunes concurrency). */
  tuning?: Partial<WorkerOptions>;
}

export interface RunningWorker {
  /** Serves the shared task queue: workflows and every activity. */
  worker: Worker;
  /** With a lab host: serves `<task queue>@<host>`, where the runs pinned to this host send their steps. */
  hostWorker?: Worker;
  connection: NativeConnection;
  /** Runs every worker until shutdown. */
  run(): Promise<void>;
  shutdown(): void;
  /** Closes the connection after the workers have stopped. */
  close(): Promise<void>;
}

export async function createWorker(options: CreateWorkerOptions): Promise<RunningWorker> {
  const { address, namespace, taskQueue, deps } = options;
  // What a worker that died on this host left behind: first its commands (stopped), then its running
  // steps (handed back to Temporal, which retries them now rather than after their heartbeat timeout).
  const reaped = reapOrphans(deps.stateRoot);
  if (reaped.length > 0)
    console.warn(
      `stopped ${reaped.length} command(s) left running by a worker that died: ${reaped.join(', ')}`,
    );
  const admin = await Connection.connect({ address });
  try {
    await ensureSearchAttributes(admin, namespace);
    const handed = await failDeadWorkersTasks(deps.stateRoot, new Client({ connection: admin, namespace }));
    for (const task of handed)
      console.warn(
        `handed back step ${task.activityId} (attempt ${task.attempt}) of ${task.workflowId}: its worker (pid ${task.workerPid}) died`,
      );
  } finally {
    await admin.close();
  }
  const connection = await NativeConnection.connect({ address });
  const activities = createActivities(deps);
  const identity = `${process.pid}@${os.hostname()}${deps.labHost ? `/lab-host=${deps.labHost}` : ''}`;
  // A cancellation reaches a running activity in the answer to its heartbeat, and the workflow waits for
  // cancelled steps to stop before `finally`: heartbeats go out at least every second, not every 80% of
  // the heartbeat timeout, so that Ctrl-C and `tunnel-lab cancel` take effect at once.
  const heartbeats = { maxHeartbeatThrottleInterval: '1s', defaultHeartbeatThrottleInterval: '1s' } as const;
  const shared = {
    ...heartbeats,
    // Each running step is in the ledger a later worker reads should this one die (see task-ledger.ts).
    interceptors: { activity: [taskLedger(deps.stateRoot)] },
  };
  const worker = await Worker.create({
    connection,
    namespace,
    taskQueue,
    identity,
    workflowBundle: { codePath: freshBundle(deps.projectRoot) },
    activities,
    ...shared,
    // A workflow's next task waits this long on the sticky queue of the worker that last ran it (10 s by
    // default) before any worker may take it: a dead worker's runs continue sooner on the next one.
    stickyQueueScheduleToStartTimeout: '2s',
    ...options.tuning,
  });
  const hostWorker = deps.labHost
    ? await Worker.create({
        connection,
        namespace,
        taskQueue: hostQueue(taskQueue, deps.labHost),
        identity,
        activities,
        ...shared,
        ...options.tuning,
      })
    : undefined;
  return {
    worker,
    hostWorker,
    connection,
    run: async () => {
      await Promise.all([worker.run(), hostWorker?.run()]);
    },
    shutdown: () => {
      worker.shutdown();
      hostWorker?.shutdown();
    },
    close: () => connection.close(),
  };
}

/** The prebuilt bundle; refuses a bundle older than the workflow sources so tests never run stale code. */
export function freshBundle(projectRoot: string): string {
  const bundle = workflowBundlePath(projectRoot);
  if (!existsSync(bundle)) {
    throw new Error(`no workflow bundle at ${bundle}: run \`npm run build\` first`);
  }
  const built = statSync(bundle).mtimeMs;
  // Every source of the workflow code: the whole workflows/ folder, whatever files it holds.
  const sources = path.join(projectRoot, 'workflows');
  if (existsSync(sources)) {
    for (const entry of readdirSync(sources, { recursive: true, encoding: 'utf8' })) {
      const file = path.join(sources, entry);
      if (file.endsWith('.ts') && statSync(file).mtimeMs > built) {
        throw new Error(`the workflow bundle is older than ${file}: run \`npm run build\``);
      }
    }
  }
  return bundle;
}
