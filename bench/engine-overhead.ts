/**
 * The engine's overhead per step: a playbook of no-op `exec` steps, the run's wall time minus the steps'
 * own time, divided by the steps; where that time goes, from the run's history; and the same command run
 * by a plain loop. Part of `npm run bench` (bench/main.ts).
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Client } from '@temporalio/client';
import { tsToMs } from '@temporalio/common/lib/time.js';
import proto from '@temporalio/proto';
import { execa } from 'execa';
import { startScenario } from '../src/client.js';
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
}

/**
 * Runs a playbook of `steps` no-op `exec` steps `runs` times (after one warm-up run) on a worker that
 * serves `taskQueue` and reads playbooks from `dir`.
 */
export async function measureEngineOverhead(options: {
  client: Client;
  taskQueue: string;
  dir: string;
  runs: number;
  steps: number;
}): Promise<EngineOverhead> {
  const { client, taskQueue, dir, runs, steps } = options;
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

  const loopStart = performance.now();
  for (let i = 0; i < steps; i++) await execa('true', []);
  const loopPerCommandMs = (performance.now() - loopStart) / steps;
  return {
    perStepMs: median(perStep),
    perRunMs: perStep,
    wallMs: median(walls),
    breakdown: breakdown!,
    loopPerCommandMs,
  };
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
