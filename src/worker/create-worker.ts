/** Builds a worker for the `tunnelScenario` workflow and every action's activity. */
import { existsSync, readdirSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { WorkerOptions } from '@temporalio/worker';
import type { ActionDeps } from '../../activities/action.js';
import { hostQueue } from '../../workflows/types.js';
import { workflowBundlePath } from '../config.js';
import { PodNames } from '../lab/pod-names.js';
import { ToolVersions } from '../lab/tool-versions.js';
import { SshPool } from '../lab/ssh-pool.js';
import { useSpawner } from '../run-command.js';
import { Spawner } from '../spawner/spawner.js';
import { lazyActivities } from './lazy-activities.js';
import { reapOrphans } from './orphans.js';
import { Client, NativeConnection, Worker } from './sdk.js';
import { failDeadWorkersTasks, taskLedger, type HandedBack } from './task-ledger.js';

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
  const { address, namespace, deps } = options;
  // What a worker that died on this host left behind: first its commands (stopped), then its running
  // steps (handed back to Temporal, which retries them now rather than after their heartbeat timeout).
  const reaped = reapOrphans(deps.stateRoot);
  if (reaped.length > 0)
    console.warn(
      `stopped ${reaped.length} command(s) left running by a worker that died: ${reaped.join(', ')}`,
    );
  // One connection for everything: the worker's own (Rust core's) serves the operator and workflow
  // services too, so no second gRPC stack (@grpc/grpc-js) connects at start.
  const connection = await NativeConnection.connect({ address });
  // The steps' ssh connections to lab machines, the client pods they picked and the releases the lab tools
  // reported, kept between steps; the connections close with the worker.
  const sshPool = new SshPool();
  const pods = new PodNames();
  const toolVersions = new ToolVersions();
  // The steps' commands start from a small process of their own, not from the worker (see spawner.ts).
  const spawner = new Spawner();
  const stopSpawning = useSpawner(spawner);
  const closeLocal = () => {
    sshPool.close();
    stopSpawning();
    spawner.close();
  };
  try {
    // Worker.create spends most of its time waiting for its workflow thread to load the bundle, so the
    // server chores run meanwhile: registering the runs' search attributes (a workflow task that upserts
    // them fails while the server does not know them) and handing the dead workers' steps back. Both end
    // before createWorker returns, so before run() polls, as when they ran first.
    const building = createWorkers(connection, {
      ...options,
      deps: { ...deps, sshPool, pods, toolVersions },
    });
    const preparing = prepareServer(connection, namespace, deps.stateRoot);
    const [prepared, built] = await Promise.allSettled([preparing, building]);
    if (prepared.status === 'rejected') {
      if (built.status === 'fulfilled') await dispose(built.value);
      throw prepared.reason;
    }
    if (built.status === 'rejected') throw built.reason;
    for (const task of prepared.value)
      console.warn(
        `handed back step ${task.activityId} (attempt ${task.attempt}) of ${task.workflowId}: its worker (pid ${task.workerPid}) died`,
      );
    const { worker, hostWorker, loadActivities } = built.value;
    const shutdown = () => {
      worker.shutdown();
      hostWorker?.shutdown();
    };
    return {
      worker,
      hostWorker,
      connection,
      run: async () => {
        const running = Promise.all([worker.run(), hostWorker?.run()]);
        spawner.start();
        // Polling has begun: the activities load now, while the first tasks are on their way, and a
        // failure to load them stops the worker as it did when they were loaded before it started.
        let failure: { error: unknown } | undefined;
        const loading = loadActivities().catch((error: unknown) => {
          failure = { error };
          for (const w of [worker, hostWorker]) if (w?.getState() === 'RUNNING') w.shutdown();
        });
        await running;
        await loading;
        if (failure) throw failure.error;
      },
      shutdown,
      close: async () => {
        closeLocal();
        await connection.close();
      },
    };
  } catch (err) {
    closeLocal();
    await connection.close().catch(() => {});
    throw err;
  }
}

/** Registers the search attributes, then hands the dead workers' steps back; returns those steps. */
async function prepareServer(
  connection: NativeConnection,
  namespace: string,
  stateRoot: string,
): Promise<HandedBack[]> {
  // Imported here, while the workflow thread loads: it is the one module of the worker's start that
  // imports an SDK package as an ES module (@temporalio/common, through the workflows' attribute keys).
  const { ensureSearchAttributes } = await import('../temporal/search-attributes.js');
  await ensureSearchAttributes(connection, namespace);
  return failDeadWorkersTasks(stateRoot, new Client({ connection, namespace }));
}

interface Workers {
  worker: Worker;
  hostWorker?: Worker;
  loadActivities: () => Promise<void>;
}

async function createWorkers(connection: NativeConnection, options: CreateWorkerOptions): Promise<Workers> {
  const { namespace, taskQueue, deps } = options;
  const { activities, load } = lazyActivities(deps);
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
  let hostWorker: Worker | undefined;
  try {
    hostWorker = deps.labHost
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
  } catch (err) {
    await dispose({ worker, loadActivities: load });
    throw err;
  }
  return { worker, hostWorker, loadActivities: load };
}

/**
 * Releases workers that were created but must not serve, on the way out of a failed start (their
 * connection cannot close while they hold it, nor the process end while their workflow thread runs).
 * The SDK stops a worker only once it runs, so each runs and is stopped at once (a task its first poll
 * may bring in that moment is finished or handed back, as by any worker that stops).
 */
async function dispose(workers: Workers): Promise<void> {
  const stopNow = Promise.resolve();
  const created = workers.hostWorker ? [workers.worker, workers.hostWorker] : [workers.worker];
  await Promise.allSettled(created.map((w) => w.runUntil(stopNow)));
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
