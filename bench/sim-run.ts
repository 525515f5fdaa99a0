/**
 * Whole runs of a playbook on the simulated lab, on one in-process worker: the wall time, the machine's
 * CPU time and the number of processes started while they ran, one run alone and N runs at once.
 *
 * CPU and processes are the whole machine's (from /proc/stat), so they count what a run costs wherever it
 * is spent: the worker, the Temporal server, the stand-in tools, sshd, nginx and Envoy. Run it on a quiet
 * machine.
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { Client } from '@temporalio/client';
import { scenarioOutcome, startScenario } from '../src/client.js';
import type { StepRecord } from '../workflows/types.js';

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
  return { cpuSeconds: busy / 100, forks };
}

export interface RunsFigure {
  /** Runs started at once. */
  runs: number;
  /** From the first start to the last end, in seconds. */
  wallSeconds: number;
  cpuSeconds: number;
  /** The part of cpuSeconds this process spent: the worker (and the bench driving it). */
  workerCpuSeconds: number;
  forks: number;
  /** Runs whose result was `passed`. */
  passed: number;
  /** Each run's id and how it ended, for the ones that did not pass. */
  problems: string[];
  /** Each run's steps, as its result lists them (for the runs that ended with one). */
  steps: StepRecord[][];
}

export interface SimRunOptions {
  client: Client;
  taskQueue: string;
  playbook: string;
  lab: string;
  /** How many runs start at once. */
  runs: number;
}

/** Starts `runs` runs at once and waits for all of them. */
export async function measureRuns(options: SimRunOptions): Promise<RunsFigure> {
  const { client, taskQueue, playbook, lab, runs } = options;
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
  return {
    runs,
    wallSeconds,
    cpuSeconds: after.cpuSeconds - before.cpuSeconds,
    workerCpuSeconds: (own.user + own.system) / 1e6,
    forks: after.forks - before.forks,
    passed: outcomes.filter((o) => o.status === 'passed').length,
    problems: outcomes.filter((o) => o.status !== 'passed').map((o) => `${o.id}: ${o.status}`),
    steps: outcomes.map((o) => o.steps),
  };
}
