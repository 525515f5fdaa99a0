/**
 * Starting and stopping a daemon that sim/supervisor.ts runs: its programs and readiness checks go into
 * `<dir>/supervisor.json`, the supervisor is started detached (it outlives the stand-in that starts it,
 * as a VM's services outlive the ssh session), and `<sim state>/<daemon>.json` records its pid with
 * whatever else the caller keeps there. Stopping stops the whole tree, checked by its config path so a
 * recycled pid is never signalled.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../../src/config.js';
import type { SupervisorConfig } from '../supervisor.js';
import { simProgramPath } from './bundles.js';
import { isOurs, stopTree } from './procs.js';
import { readState, updateState } from './state.js';

/** `<sim state>/<daemon>.json`: the supervisor's pid (absent once stopped) and the caller's fields. */
export interface SupervisedRecord {
  pid?: number;
  dir: string;
}

function configFile(dir: string): string {
  return path.join(dir, 'supervisor.json');
}

/** The daemon's record when its supervisor runs (and is ours), else undefined. */
export function runningSupervised<T extends SupervisedRecord>(
  simState: string,
  daemon: string,
): T | undefined {
  const record = readState<Partial<T>>(simState, daemon, {});
  if (!record.dir || !isOurs(record.pid, configFile(record.dir))) return undefined;
  return record as T;
}

/**
 * Starts the daemon (stopping an earlier one first) and waits until the supervisor reports all its
 * programs ready; on failure stops what started and throws with the supervisor's reason.
 */
export async function startSupervised<T extends SupervisedRecord>(
  simState: string,
  daemon: string,
  config: SupervisorConfig,
  record: Omit<T, 'pid' | 'dir'>,
  timeoutMs = 120_000,
): Promise<T> {
  await stopSupervised(simState, daemon);
  mkdirSync(config.dir, { recursive: true });
  const file = configFile(config.dir);
  writeFileSync(file, JSON.stringify(config, null, 2));
  // The supervisor runs from the build (as the stand-ins do), whether this module does or not.
  const script = simProgramPath(projectRoot(), 'supervisor');
  const log = path.join(config.dir, 'supervisor.log');
  const child = spawn(process.execPath, [script, file], {
    detached: true,
    stdio: ['ignore', openSync(log, 'w'), openSync(log, 'a')],
  });
  child.unref();
  const stored = await updateState<Partial<T>, T>(simState, daemon, {}, (r) => {
    for (const key of Object.keys(r)) delete (r as Record<string, unknown>)[key];
    Object.assign(r, record, { pid: child.pid, dir: config.dir });
    return { ...r } as T;
  });
  const started = Date.now();
  for (;;) {
    const text = existsSync(log) ? readFileSync(log, 'utf8') : '';
    if (/^ready$/m.test(text)) return stored;
    const failed =
      text.includes(`${config.name}:`) || text.includes('supervisor:') || !isOurs(child.pid, file);
    if (failed || Date.now() - started > timeoutMs) {
      await stopSupervised(simState, daemon);
      throw new Error(
        failed
          ? text.trim() || `the ${config.name} exited before it was ready`
          : `the ${config.name} was not ready within ${timeoutMs / 1000} s; see ${config.dir}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Stops the daemon's whole process tree; its files stay. */
export async function stopSupervised(simState: string, daemon: string, graceMs = 10_000): Promise<void> {
  if (!existsSync(simState)) return;
  await updateState<Partial<SupervisedRecord>, void>(simState, daemon, {}, async (record) => {
    if (record.dir) await stopTree(record.pid, configFile(record.dir), graceMs);
    delete record.pid;
  });
}
