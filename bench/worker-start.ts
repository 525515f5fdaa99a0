/**
 * How long a worker process takes from its spawn to its first poll of the task queue, which is what a
 * crashed worker's replacement (or `npm run worker`) costs before any run can move again.
 *
 * What is measured: the worker (`node dist/src/worker/main.js`) is spawned on a task queue no one else
 * uses, with a fresh state folder; the clock starts just before the spawn. The end is read from the
 * Temporal server itself: DescribeTaskQueue (workflow task queue) is asked every 10 ms until it lists a
 * poller, and the figure is that poller's `lastAccessTime`, which the server's matching service stamps when
 * the poll arrives. So the end is when the server saw the poll, not when this process happened to ask;
 * the 10 ms asking interval does not add to it. Server and bench run on the same machine, so both clocks
 * are the same one (Date.now(), millisecond resolution). A later poll of the same worker moves
 * `lastAccessTime` on; the worker opens its first polls together and they then wait on the empty queue
 * (about a minute), so the error this adds is the few milliseconds between those first polls. Checked
 * against timestamps taken inside a worker: `lastAccessTime` came 3-5 ms after it called Worker.run(),
 * and 7-16 ms before this process first saw the poller.
 *
 * The figures are wall time: on a 2-core machine, other processes' load lengthens them (by up to 2× seen).
 *
 * `node -e 0` is timed from spawn to exit, for the ratio: the floor of any Node program on this machine.
 * The first worker start of a series warms the file cache and is not counted (`warmup`), as a worker
 * that restarts after a crash finds its files cached.
 *
 * The floor: bench/bare/worker.ts, the SDK serving the same workflow bundle with nothing of the project's,
 * started and timed the same way. What the project adds is the difference.
 *
 * Usage alone: node dist/bench/worker-start.js [--runs N] (starts its own dev server).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Connection } from '@temporalio/client';
import { tsToMs } from '@temporalio/common/lib/time.js';
import proto from '@temporalio/proto';
import { median } from './stats.js';

export const WORKER_START_TARGET_MS = 600;

export interface WorkerStartOptions {
  /** The project checkout whose dist/src/worker/main.js is run. */
  root: string;
  /** The Temporal server's address. */
  address: string;
  namespace?: string;
  /** Counted starts (5 by default). */
  runs?: number;
  /** Starts run first and not counted (1 by default). */
  warmup?: number;
}

export interface WorkerStartResult {
  /** Milliseconds from spawn to the server seeing the first poll, one per counted start. */
  workerMs: number[];
  /** Milliseconds from spawn to exit of `node -e 0`, as many. */
  nodeMs: number[];
  /** Milliseconds from spawn to first poll of the bare SDK worker (bench/bare/worker.ts), as many. */
  floorMs: number[];
  floorMedian: number;
  median: number;
  min: number;
  max: number;
  nodeMedian: number;
  targetMs: number;
  met: boolean;
}

const POLL_EVERY_MS = 10;
const GIVE_UP_MS = 30_000;

export async function measureWorkerStart(options: WorkerStartOptions): Promise<WorkerStartResult> {
  const runs = options.runs ?? 5;
  const warmup = options.warmup ?? 1;
  const namespace = options.namespace ?? 'default';
  const connection = await Connection.connect({ address: options.address });
  const workerMs: number[] = [];
  const nodeMs: number[] = [];
  const floorMs: number[] = [];
  const realWorker = path.join(options.root, 'dist', 'src', 'worker', 'main.js');
  const bareWorker = path.join(options.root, 'dist', 'bench', 'bare', 'worker.js');
  try {
    for (let i = 0; i < warmup + runs; i++) {
      const ms = await oneWorkerStart(realWorker, options.address, namespace, connection);
      if (i >= warmup) workerMs.push(ms);
    }
    for (let i = 0; i < warmup + runs; i++) {
      const ms = await oneWorkerStart(bareWorker, options.address, namespace, connection);
      if (i >= warmup) floorMs.push(ms);
    }
    for (let i = 0; i < warmup + runs; i++) {
      const ms = await nodeNoop();
      if (i >= warmup) nodeMs.push(ms);
    }
  } finally {
    await connection.close();
  }
  const med = median(workerMs);
  return {
    workerMs,
    nodeMs,
    floorMs,
    floorMedian: median(floorMs),
    median: med,
    min: Math.min(...workerMs),
    max: Math.max(...workerMs),
    nodeMedian: median(nodeMs),
    targetMs: WORKER_START_TARGET_MS,
    met: med <= WORKER_START_TARGET_MS,
  };
}

/**
 * One worker (the script `entry`) spawned on a fresh queue and state folder: milliseconds to its first
 * poll; then stopped.
 */
async function oneWorkerStart(
  entry: string,
  address: string,
  namespace: string,
  connection: Connection,
): Promise<number> {
  const stateRoot = await mkdtemp(path.join(os.tmpdir(), 'worker-start-'));
  const taskQueue = `worker-start-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    TEMPORAL_ADDRESS: address,
    TEMPORAL_NAMESPACE: namespace,
    TEMPORAL_TASK_QUEUE: taskQueue,
    TUNNEL_LAB_STATE: stateRoot,
  };
  // Only the shared queue is watched: a lab host would add a second worker to start.
  delete env.TUNNEL_LAB_HOST;
  let output = '';
  const spawned = Date.now();
  const child = spawn(process.execPath, [entry], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const keep = (chunk: Buffer) => (output = (output + chunk.toString()).slice(-4000));
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  let exitCode: number | null | undefined;
  const exited = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      exitCode = code ?? (signal ? -1 : null);
      resolve();
    }),
  );
  try {
    for (;;) {
      if (exitCode !== undefined)
        throw new Error(`the worker exited (code ${exitCode}) before polling:\n${output}`);
      if (Date.now() - spawned > GIVE_UP_MS)
        throw new Error(`the worker did not poll within ${GIVE_UP_MS} ms:\n${output}`);
      const { pollers } = await connection.workflowService.describeTaskQueue({
        namespace,
        taskQueue: {
          name: taskQueue,
          kind: proto.temporal.api.enums.v1.TaskQueueKind.TASK_QUEUE_KIND_NORMAL,
        },
        taskQueueType: proto.temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
      });
      const seen = (pollers ?? []).map((p) => (p.lastAccessTime ? tsToMs(p.lastAccessTime) : Date.now()));
      if (seen.length > 0) return Math.min(...seen) - spawned;
      await new Promise((r) => setTimeout(r, POLL_EVERY_MS));
    }
  } finally {
    if (exitCode === undefined) child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
    await rm(stateRoot, { recursive: true, force: true });
  }
}

/** Milliseconds from spawn to exit of `node -e 0`. */
async function nodeNoop(): Promise<number> {
  const spawned = Date.now();
  const child = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
  await new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', () => resolve());
  });
  return Date.now() - spawned;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' } } });
  // Loaded here only: the exported function needs neither the CLI finder nor the dev server.
  const { projectRoot } = await import('../src/config.js');
  const { ensureTemporalCli } = await import('../src/temporal/cli-binary.js');
  const { startDevServer } = await import('../src/temporal/dev-server.js');
  const root = projectRoot();
  const server = await startDevServer({ cli: await ensureTemporalCli(root), uiPort: false });
  let result: WorkerStartResult;
  try {
    result = await measureWorkerStart({ root, address: server.address, runs: Number(values.runs) });
  } finally {
    await server.stop();
  }
  const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  console.log(
    `worker start to first poll: ${s(result.median)} (target ≤ ${result.targetMs / 1000} s: ${result.met ? 'met' : 'NOT met'}); node -e 0: ${s(result.nodeMedian)}`,
  );
  console.log(
    `  median ${s(result.median)}, min ${s(result.min)}, max ${s(result.max)} over ${result.workerMs.length} starts: ${result.workerMs.map((ms) => `${ms} ms`).join(', ')}`,
  );
  console.log(
    `  ${(result.median / result.targetMs).toFixed(2)}× the target; ${(result.median / result.nodeMedian).toFixed(1)}× node -e 0 (${result.nodeMs.map((ms) => `${ms} ms`).join(', ')})`,
  );
  console.log(
    `  a bare SDK worker (bench/bare/worker.ts): ${s(result.floorMedian)}; the project adds ${s(result.median - result.floorMedian)} (${result.floorMs.map((ms) => `${ms} ms`).join(', ')})`,
  );
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
  });
}
