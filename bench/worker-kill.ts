/**
 * Prints how a run recovers from a worker SIGKILLed during each step of a playbook in turn (tls-passthrough
 * on the simulated lab by default): whether the run passed, how long after the new worker was spawned the
 * killed step started again, and which other steps needed more than one attempt (a probe may fail once
 * while the mesh settles; no step's activity is scheduled twice). The worker is killed the moment the step
 * appears in the workers' task ledger, so even short steps are caught running.
 * Usage: node dist/bench/worker-kill.js [--playbook NAME] [--lab NAME] [--only STEP | --from STEP]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { tsToMs } from '@temporalio/common/lib/time.js';
import proto from '@temporalio/proto';
import { actions } from '../activities/registry.js';
import { startScenario } from '../src/client.js';
import { projectRoot } from '../src/config.js';
import { loadPlaybookFile, resolvePlaybookPath } from '../src/playbook/load.js';
import { workerTasksDir } from '../src/state-layout.js';
import { ensureTemporalCli } from '../src/temporal/cli-binary.js';
import { startDevServer } from '../src/temporal/dev-server.js';
import { planSteps, stepOfActivity, type ScenarioResult } from '../workflows/types.js';

const EventType = proto.temporal.api.enums.v1.EventType;
const TARGET_MS = 2_000;

function startWorker(root: string, address: string, stateRoot: string, taskQueue: string): ChildProcess {
  return spawn(process.execPath, [path.join(root, 'dist', 'src', 'worker', 'main.js')], {
    env: {
      ...process.env,
      TEMPORAL_ADDRESS: address,
      TEMPORAL_TASK_QUEUE: taskQueue,
      TUNNEL_LAB_STATE: stateRoot,
    },
    stdio: 'ignore',
  });
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

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      playbook: { type: 'string', default: 'tls-passthrough' },
      lab: { type: 'string', default: 'sim' },
      only: { type: 'string' },
      from: { type: 'string' },
    },
  });
  const root = projectRoot();
  const playbooksDir = path.join(root, 'playbooks');
  const plan = await loadPlaybookFile(resolvePlaybookPath(values.playbook, playbooksDir), {
    playbooksDir,
    actions,
  });
  const all = planSteps(plan).map(({ step }) => step.id);
  const steps = values.only
    ? all.filter((id) => id === values.only)
    : all.slice(values.from ? Math.max(0, all.indexOf(values.from)) : 0);
  const server = await startDevServer({ cli: await ensureTemporalCli(root), uiPort: false });
  const connection = await Connection.connect({ address: server.address });
  const client = new Client({ connection });
  const rows: string[][] = [['step', 'killed', 'run', 'restart after spawn', 'other steps retried']];
  const latencies: number[] = [];
  try {
    for (const step of steps) {
      const stateRoot = await mkdtemp(path.join(os.tmpdir(), 'bench-kill-'));
      const taskQueue = `bench-kill-${Date.now()}`;
      let worker = startWorker(root, server.address, stateRoot, taskQueue);
      const handle = await startScenario(client, taskQueue, { playbook: values.playbook, lab: values.lab });
      let ended = false;
      const result = handle.result().finally(() => (ended = true)) as Promise<ScenarioResult>;
      const caught = await stepRunning(stateRoot, step, () => ended);
      let spawned = 0;
      if (caught) {
        worker.kill('SIGKILL');
        await new Promise((r) => worker.once('exit', r));
        spawned = Date.now();
        worker = startWorker(root, server.address, stateRoot, taskQueue);
      }
      const outcome = await result.catch((err: unknown) => ({ status: `failed: ${String(err)}` }) as never);
      worker.kill('SIGTERM');
      await new Promise((r) => worker.once('exit', r));

      // From the history: each step's activities, the attempt each ended on and when that attempt started
      // (Temporal records one started event per activity, for its last attempt).
      const starts = new Map<string, { at: number; attempt: number }[]>();
      const scheduled = new Map<number, string>();
      for (const event of (await handle.fetchHistory()).events ?? []) {
        const id = Number(event.eventId);
        if (event.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED) {
          scheduled.set(id, stepOfActivity(event.activityTaskScheduledEventAttributes!.activityId!));
        }
        if (event.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED) {
          const attrs = event.activityTaskStartedEventAttributes!;
          const of = scheduled.get(Number(attrs.scheduledEventId))!;
          starts.set(of, [
            ...(starts.get(of) ?? []),
            { at: tsToMs(event.eventTime!), attempt: attrs.attempt ?? 1 },
          ]);
        }
      }
      const twice = [...starts]
        .filter(([id, runs]) => id !== step && (runs.length > 1 || runs.some((r) => r.attempt > 1)))
        .map(([id]) => id);
      const restart = caught
        ? (starts.get(step) ?? []).find((r) => r.attempt > 1 || r.at >= spawned)?.at
        : undefined;
      if (restart !== undefined) latencies.push(restart - spawned);
      rows.push([
        step,
        caught ? 'yes' : 'no (ended first)',
        outcome.status,
        restart !== undefined ? `${restart - spawned} ms` : caught ? 'never' : '-',
        twice.join(', ') || 'none',
      ]);
      console.error(rows.at(-1)!.join('  '));
    }
  } finally {
    await connection.close();
    await server.stop();
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const row of rows) console.log(row.map((cell, i) => cell.padEnd(widths[i]!)).join('  '));
  if (latencies.length > 0) {
    const sorted = [...latencies].sort((a, b) => a - b);
    console.log(
      `\nrestart after the new worker's spawn: median ${sorted[Math.floor(sorted.length / 2)]} ms, ` +
        `max ${sorted.at(-1)} ms over ${sorted.length} kills (goal: under ${TARGET_MS} ms)`,
    );
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
