/**
 * Prints the engine's overhead per step: a playbook of 50 no-op `exec` steps on the embedded dev server,
 * the run's wall time minus the steps' own time, divided by 50; where that time goes, from the run's
 * history; the same command run by a plain loop; and the worker's start time.
 * Usage: npm run bench [-- --runs N --steps N --memory]
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { tsToMs } from '@temporalio/common/lib/time.js';
import proto from '@temporalio/proto';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { execa } from 'execa';
import { startScenario } from '../src/client.js';
import { projectRoot } from '../src/config.js';
import { ensureTemporalCli } from '../src/temporal/cli-binary.js';
import { startDevServer } from '../src/temporal/dev-server.js';
import { createWorker } from '../src/worker/create-worker.js';
import type { ScenarioResult } from '../workflows/types.js';

const TARGET_MS = 25;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '5' },
      steps: { type: 'string', default: '50' },
      // The CLI's embedded server keeps its data in a file; --memory measures the in-memory store instead.
      memory: { type: 'boolean', default: false },
    },
  });
  const runs = Number(values.runs);
  const steps = Number(values.steps);
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const root = projectRoot();
  const stateRoot = await mkdtemp(path.join(os.tmpdir(), 'bench-'));
  const server = await startDevServer({
    cli: await ensureTemporalCli(root),
    uiPort: false,
    ...(values.memory ? {} : { dbFile: path.join(stateRoot, 'temporal', 'dev.db') }),
  });
  const file = path.join(stateRoot, 'noop.yaml');
  const lines = ['name: noop', 'steps:'];
  for (let i = 0; i < steps; i++) lines.push(`  - { id: s${i}, uses: exec, with: { command: ['true'] } }`);
  await writeFile(file, lines.join('\n') + '\n');

  const workerStart = performance.now();
  const running = await createWorker({
    address: server.address,
    namespace: 'default',
    taskQueue: 'bench',
    deps: { projectRoot: root, stateRoot, playbookDirs: [stateRoot] },
  });
  const workerReady = performance.now() - workerStart;
  const connection = await Connection.connect({ address: server.address });
  const client = new Client({ connection });

  const perStep: number[] = [];
  const walls: number[] = [];
  let breakdown: Breakdown | undefined;
  try {
    await running.worker.runUntil(async () => {
      for (let r = 0; r <= runs; r++) {
        const began = performance.now();
        const handle = await startScenario(client, 'bench', { playbook: file }, `bench-${Date.now()}-${r}`);
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
    });
  } finally {
    await running.close();
    await connection.close();
    await server.stop();
  }

  const loopStart = performance.now();
  for (let i = 0; i < steps; i++) await execa('true', []);
  const loopPerCommand = (performance.now() - loopStart) / steps;

  const fmt = (ms: number) => `${ms.toFixed(1)} ms`;
  const store = values.memory ? 'in-memory SQLite' : 'SQLite file, as the CLI embeds it';
  console.log(
    `embedded dev server (${store}); ${steps} no-op exec steps per run; ${runs} runs after a warm-up`,
  );
  console.log(`engine overhead per step (median): ${fmt(median(perStep))}`);
  console.log(`  per run: ${perStep.map(fmt).join(', ')}`);
  console.log(`  wall time per run (median): ${fmt(median(walls))}`);
  if (breakdown) {
    console.log("where a step's time goes, from the last run's history (median per step):");
    console.log(`  workflow task, scheduled -> picked up by the worker: ${fmt(breakdown.workflowTaskWait)}`);
    console.log(`  workflow task on the worker: ${fmt(breakdown.workflowTaskRun)}`);
    console.log(
      `  activity started -> completed, minus the command's own time: ${fmt(breakdown.activityOverhead)}`,
    );
  }
  console.log(`plain loop, same command (execa, per command): ${fmt(loopPerCommand)}`);
  console.log(`worker start (prebuilt bundle, connect, register): ${fmt(workerReady)}`);
  console.log(
    `target: overhead per step <= ${TARGET_MS} ms: ${median(perStep) <= TARGET_MS ? 'met' : 'NOT met'}`,
  );
}

interface Breakdown {
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

function median(xs: number[]): number {
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
