/**
 * The engine's overhead per step: a playbook of no-op `exec` steps, the run's wall time minus the steps'
 * own time, divided by the steps; where that time goes, from the run's history; and the same command run
 * by a plain loop. Part of `npm run bench` (bench/main.ts).
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import type { Client } from '@temporalio/client';
import { tsToMs } from '@temporalio/common/lib/time.js';
import proto from '@temporalio/proto';
import { bundleWorkflowCode, DefaultLogger, type NativeConnection, Worker } from '@temporalio/worker';
import { execa } from 'execa';
import { createActivities } from '../activities/index.js';
import { startScenario } from '../src/client.js';
import { projectRoot } from '../src/config.js';
import { median } from './stats.js';
import type { ScenarioResult } from '../workflows/types.js';

export interface EngineOverhead {
  /** Per step: the run's wall time minus the steps' own time, divided by the steps (median over runs). */
  perStepMs: number;
  perRunMs: number[];
  wallMs: number;
  breakdown: Breakdown;
  /** The same command run by a plain loop (execa), per command. */
  loopPerCommandMs: number;
  /** Per step, the same way: a bare workflow running the same activity, on its own worker (the floor). */
  barePerStepMs: number;
}

/**
 * Runs a playbook of `steps` no-op `exec` steps `runs` times (after one warm-up run) on a worker that
 * serves `taskQueue` and reads playbooks from `dir`.
 */
export async function measureEngineOverhead(options: {
  client: Client;
  /** The worker's connection, for the bare workflow's worker. */
  connection: NativeConnection;
  taskQueue: string;
  dir: string;
  runs: number;
  steps: number;
}): Promise<EngineOverhead> {
  const { client, connection, taskQueue, dir, runs, steps } = options;
  const file = path.join(dir, 'noop.yaml');
  const lines = ['name: noop', 'steps:'];
  for (let i = 0; i < steps; i++) lines.push(`  - { id: s${i}, uses: exec, with: { command: ['true'] } }`);
  await writeFile(file, lines.join('\n') + '\n');

  const perStep: number[] = [];
  const walls: number[] = [];
  let breakdown: Breakdown | undefined;
  for (let r = 0; r <= runs; r++) {
    const began = performance.now();
    const handle = await startScenario(
      client,
      taskQueue,
      { playbook: file },
      `bench-noop-${Date.now()}-${r}`,
    );
    const result = (await handle.result()) as ScenarioResult;
    const wall = performance.now() - began;
    const own = result.steps.reduce(
      (sum, s) => sum + ((s.output as { durationMs?: number }).durationMs ?? 0),
      0,
    );
    // The first run warms the worker's caches; it is not counted.
    if (r === 0) continue;
    walls.push(wall);
    perStep.push((wall - own) / steps);
    if (r === runs) breakdown = stepBreakdown(await handle.fetchHistory(), result);
  }

  const barePerStepMs = await measureBareWorkflow(client, connection, runs, steps);

  const loopStart = performance.now();
  for (let i = 0; i < steps; i++) await execa('true', []);
  const loopPerCommandMs = (performance.now() - loopStart) / steps;
  return {
    perStepMs: median(perStep),
    perRunMs: perStep,
    wallMs: median(walls),
    breakdown: breakdown!,
    loopPerCommandMs,
    barePerStepMs,
  };
}

/**
 * The floor: bench/bare/workflow.ts on a worker of its own (same server, same kind of connection, the
 * same `exec` activity), measured as the playbook is: wall time minus the commands' own, per step.
 */
async function measureBareWorkflow(
  client: Client,
  connection: NativeConnection,
  runs: number,
  steps: number,
): Promise<number> {
  const taskQueue = `bench-bare-${Date.now()}`;
  const exec = createActivities({
    projectRoot: projectRoot(),
    stateRoot: await mkdtemp(path.join(os.tmpdir(), 'bare-')),
  }).exec!;
  const worker = await Worker.create({
    connection,
    taskQueue,
    workflowBundle: await bundleWorkflowCode({
      workflowsPath: fileURLToPath(new URL('./bare/workflow.js', import.meta.url)),
      logger: new DefaultLogger('ERROR'),
    }),
    activities: { exec },
  });
  const perStep: number[] = [];
  await worker.runUntil(async () => {
    for (let r = 0; r <= runs; r++) {
      const began = performance.now();
      const own: number[] = await client.workflow.execute<(steps: number) => Promise<number[]>>('bareSteps', {
        taskQueue,
        workflowId: `${taskQueue}-${r}`,
        args: [steps],
      });
      const wall = performance.now() - began;
      if (r > 0) perStep.push((wall - own.reduce((a, b) => a + b, 0)) / steps);
    }
  });
  return median(perStep);
}

export interface Breakdown {
  workflowTaskWait: number;
  workflowTaskRun: number;
  activityOverhead: number;
}

/** Medians of the gaps between a run's events that make up each step, read from its history. */
function stepBreakdown(history: proto.temporal.api.history.v1.IHistory, result: ScenarioResult): Breakdown {
  const Type = proto.temporal.api.enums.v1.EventType;
  const events = history.events ?? [];
  const byId = new Map(events.map((e) => [Number(e.eventId), e]));
  const time = (id: unknown) => tsToMs(byId.get(Number(id))!.eventTime);
  const own = new Map(
    result.steps.map((s) => [s.id, (s.output as { durationMs?: number } | undefined)?.durationMs ?? 0]),
  );
  const wait: number[] = [];
  const run: number[] = [];
  const activity: number[] = [];
  for (const event of events) {
    const at = tsToMs(event.eventTime);
    if (event.eventType === Type.EVENT_TYPE_WORKFLOW_TASK_STARTED) {
      wait.push(at - time(event.workflowTaskStartedEventAttributes!.scheduledEventId));
    } else if (event.eventType === Type.EVENT_TYPE_WORKFLOW_TASK_COMPLETED) {
      run.push(at - time(event.workflowTaskCompletedEventAttributes!.startedEventId));
    } else if (event.eventType === Type.EVENT_TYPE_ACTIVITY_TASK_COMPLETED) {
      const attrs = event.activityTaskCompletedEventAttributes!;
      const scheduled = byId.get(Number(attrs.scheduledEventId));
      const stepId = scheduled?.activityTaskScheduledEventAttributes?.activityId ?? '';
      if (own.has(stepId)) activity.push(at - time(attrs.startedEventId) - own.get(stepId)!);
    }
  }
  return { workflowTaskWait: median(wait), workflowTaskRun: median(run), activityOverhead: median(activity) };
}
