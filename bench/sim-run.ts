/**
 * Whole runs of a playbook on the simulated lab, on one in-process worker: the wall time, the machine's
 * CPU time and the number of processes started while they ran, one run alone and N runs at once.
 *
 * CPU and processes are the whole machine's (from /proc/stat), so they count what a run costs wherever it
 * is spent: the worker, the Temporal server, the stand-in tools, sshd, nginx and Envoy. Run it on a quiet
 * machine.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { Client } from '@temporalio/client';
import { tsToMs } from '@temporalio/common/lib/time.js';
import proto from '@temporalio/proto';
import { scenarioOutcome, startScenario } from '../src/client.js';
import { procStat, TICKS_PER_SECOND } from '../src/proc.js';
import { stepOfActivity, type StepRecord } from '../workflows/types.js';

export interface MachineCounters {
  /** CPU time of all cores, busy (not idle, not waiting for I/O), in seconds. */
  cpuSeconds: number;
  /** Processes (and threads) created since boot. */
  forks: number;
}

/** The machine's busy CPU time and fork count, from /proc/stat. */
export function machineCounters(): MachineCounters {
  const stat = readFileSync('/proc/stat', 'utf8');
  const cpu = stat
    .match(/^cpu\s+(.*)$/m)![1]!
    .trim()
    .split(/\s+/)
    .map(Number);
  // user nice system idle iowait irq softirq steal (guest time is already inside user). Steal is time the
  // hypervisor gave to other guests while this one wanted to run: nothing of it was spent on the run.
  const busy = cpu[0]! + cpu[1]! + cpu[2]! + cpu[5]! + cpu[6]!;
  const forks = Number(stat.match(/^processes\s+(\d+)$/m)![1]);
  return { cpuSeconds: busy / TICKS_PER_SECOND, forks };
}

/** CPU seconds of one process and of the children it waited for; none for no process. */
function processCpu(pid: number | undefined): number {
  const stat = pid === undefined ? undefined : procStat(pid);
  return stat ? stat.cpuSeconds + stat.childrenCpuSeconds : 0;
}

/** This process's spawner (src/spawner/child.ts), which starts the steps' commands; undefined before it runs. */
function spawnerPid(): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || procStat(Number(entry))?.parent !== process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes('spawner/child')) return Number(entry);
    } catch {
      // Gone meanwhile.
    }
  }
  return undefined;
}

/**
 * Where the machine's CPU went while runs ran, in seconds: the Temporal server, the worker process, the
 * commands the steps ran (the spawner and the processes it waited for: the stand-in tools' bash
 * launchers, the stand-ins run as processes of their own, the Istio oracle, and what they ran), and the
 * rest (the lab's daemons: the stand-in host, the simulated internet, sshd, Envoy, nginx).
 */
export interface CpuSplit {
  server: number;
  worker: number;
  commands: number;
  lab: number;
}

export interface RunsFigure {
  /** Runs started at once. */
  runs: number;
  /** From the first start to the last end, in seconds. */
  wallSeconds: number;
  cpuSeconds: number;
  /** Where cpuSeconds went. */
  split: CpuSplit;
  forks: number;
  /** Runs whose result was `passed`. */
  passed: number;
  /** Each run's id and how it ended, for the ones that did not pass. */
  problems: string[];
  /** Each run's steps, as its result lists them (for the runs that ended with one). */
  steps: StepRecord[][];
  /** Each run's workflow id. */
  workflowIds: string[];
}

export interface SimRunOptions {
  client: Client;
  taskQueue: string;
  playbook: string;
  lab: string;
  /** How many runs start at once. */
  runs: number;
  /** The Temporal server's process, whose CPU is told apart. */
  serverPid?: number;
}

/** Starts `runs` runs at once and waits for all of them. */
export async function measureRuns(options: SimRunOptions): Promise<RunsFigure> {
  const { client, taskQueue, playbook, lab, runs, serverPid } = options;
  // The worker starts its spawner with its first command: a warm-up run has started it.
  const spawner = spawnerPid();
  const serverBefore = processCpu(serverPid);
  const spawnerBefore = processCpu(spawner);
  const before = machineCounters();
  const ownBefore = process.cpuUsage();
  const began = performance.now();
  const stamp = Date.now().toString(36);
  const outcomes = await Promise.all(
    Array.from({ length: runs }, async (_, i) => {
      const id = `bench-${playbook}-${stamp}-${i}`;
      try {
        const result = await scenarioOutcome(await startScenario(client, taskQueue, { playbook, lab }, id));
        return { id, status: result.error ?? result.status, steps: result.steps };
      } catch (err) {
        return { id, status: err instanceof Error ? err.message : String(err), steps: [] };
      }
    }),
  );
  const wallSeconds = (performance.now() - began) / 1000;
  const after = machineCounters();
  const own = process.cpuUsage(ownBefore);
  const cpuSeconds = after.cpuSeconds - before.cpuSeconds;
  const worker = (own.user + own.system) / 1e6;
  const server = processCpu(serverPid) - serverBefore;
  const commands = processCpu(spawner) - spawnerBefore;
  return {
    runs,
    wallSeconds,
    cpuSeconds,
    split: { server, worker, commands, lab: cpuSeconds - server - worker - commands },
    forks: after.forks - before.forks,
    passed: outcomes.filter((o) => o.status === 'passed').length,
    problems: outcomes.filter((o) => o.status !== 'passed').map((o) => `${o.id}: ${o.status}`),
    steps: outcomes.map((o) => o.steps),
    workflowIds: outcomes.map((o) => o.id),
  };
}

/**
 * How long a step's last activity attempt ran on the worker, from its history (started to completed), in
 * seconds: the step's own time without the server's and the workflow's dispatch around it. Undefined
 * when the step never completed.
 */
export async function activitySeconds(
  client: Client,
  workflowId: string,
  stepId: string,
): Promise<number | undefined> {
  const Type = proto.temporal.api.enums.v1.EventType;
  const events = (await client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
  const scheduled = events.filter(
    (e) =>
      e.eventType === Type.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED &&
      stepOfActivity(e.activityTaskScheduledEventAttributes?.activityId ?? '') === stepId,
  );
  const ids = new Set(scheduled.map((e) => Number(e.eventId)));
  const completed = events.findLast(
    (e) =>
      e.eventType === Type.EVENT_TYPE_ACTIVITY_TASK_COMPLETED &&
      ids.has(Number(e.activityTaskCompletedEventAttributes?.scheduledEventId)),
  );
  const startedId = Number(completed?.activityTaskCompletedEventAttributes?.startedEventId);
  const started = events.find((e) => Number(e.eventId) === startedId);
  if (!completed || !started) return undefined;
  return (tsToMs(completed.eventTime) - tsToMs(started.eventTime)) / 1000;
}
