/** Helpers for tests against the shared dev server: a client, a worker on a unique task queue, temp playbooks. */
import { mkdtemp, readdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection, WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import type { WorkerOptions } from '@temporalio/worker';
import { projectRoot } from '../../src/config.js';
import { runDir } from '../../src/state-layout.js';
import { failedScenario } from '../../src/client.js';
import { createWorker, type RunningWorker } from '../../src/worker/create-worker.js';
import type { ScenarioInput, ScenarioResult } from '../../workflows/types.js';

export const root = projectRoot();

export function serverAddress(): string {
  const address = process.env.TEMPORAL_TEST_ADDRESS;
  if (!address)
    throw new Error('TEMPORAL_TEST_ADDRESS is not set: the jest global setup did not start the dev server');
  return address;
}

let counter = 0;
export function uniqueQueue(prefix: string): string {
  counter += 1;
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${counter}`;
}

export interface TestLab {
  client: Client;
  connection: Connection;
  taskQueue: string;
  stateRoot: string;
  close(): Promise<void>;
}

export async function connect(prefix: string): Promise<TestLab> {
  const connection = await Connection.connect({ address: serverAddress() });
  const stateRoot = await mkdtemp(path.join(os.tmpdir(), 'tunnel-lab-state-'));
  return {
    client: new Client({ connection, namespace: 'default' }),
    connection,
    taskQueue: uniqueQueue(prefix),
    stateRoot,
    close: () => connection.close(),
  };
}

export async function startWorker(lab: TestLab, tuning?: Partial<WorkerOptions>): Promise<RunningWorker> {
  return createWorker({
    address: serverAddress(),
    namespace: 'default',
    taskQueue: lab.taskQueue,
    // Tests write their playbooks into temp folders (writePlaybook).
    deps: { projectRoot: root, stateRoot: lab.stateRoot, playbookDirs: [os.tmpdir()] },
    tuning: { shutdownGraceTime: '1s', ...tuning },
  });
}

/** Writes a playbook into a fresh temp folder and returns its path. */
export async function writePlaybook(name: string, yaml: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tunnel-lab-playbook-'));
  const file = path.join(dir, `${name}.yaml`);
  await writeFile(file, yaml);
  return file;
}

export function start(
  lab: TestLab,
  input: ScenarioInput,
  workflowId = uniqueQueue('run'),
): Promise<WorkflowHandle> {
  return lab.client.workflow.start('tunnelScenario', { taskQueue: lab.taskQueue, workflowId, args: [input] });
}

/** The run's result whether it passed (return value) or failed (the ScenarioFailed failure's details). */
export async function outcome(handle: WorkflowHandle): Promise<ScenarioResult> {
  try {
    return (await handle.result()) as ScenarioResult;
  } catch (err) {
    const failed = err instanceof WorkflowFailedError ? failedScenario(err) : undefined;
    if (failed) return failed;
    throw err;
  }
}

/** Polls `check` until it returns a value other than undefined. */
export async function eventually<T>(check: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * The local processes a run's activities have running now, as the worker records them
 * (`<stateRoot>/runs/<id>/children/<pid>.json`, see src/worker/orphans.ts): waiting for one is how a test
 * knows a step's command really started.
 */
export async function runningChildren(stateRoot: string, workflowId: string): Promise<number[]> {
  const dir = path.join(runDir(stateRoot, workflowId), 'children');
  const entries = await readdir(dir).catch(() => [] as string[]);
  return entries.filter((e) => e.endsWith('.json')).map((e) => Number(e.slice(0, -'.json'.length)));
}

/**
 * Registers beforeAll/afterAll hooks that connect to the test server and run a worker on a fresh task
 * queue for the enclosing file or describe block; `ready` receives the lab once it is up.
 */
export function useWorker(prefix: string, ready: (lab: TestLab) => void): void {
  let lab: TestLab | undefined;
  let running: RunningWorker | undefined;
  let done: Promise<void> | undefined;
  beforeAll(async () => {
    lab = await connect(prefix);
    running = await startWorker(lab);
    done = running.run();
    ready(lab);
  });
  // Only what beforeAll got to start: when it failed, its own error is the one jest reports.
  afterAll(async () => {
    if (running) {
      running.shutdown();
      await done;
      await running.close();
    }
    await lab?.close();
  });
}
