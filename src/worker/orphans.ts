/**
 * Keeps track of the local processes activities start, so that a worker that starts after a crashed one
 * can stop what the dead worker left running: a command orphaned by a SIGKILLed worker would otherwise
 * finish its step a second time, behind the retry's back.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { runsDir } from '../state-layout.js';

interface ChildRecord {
  pid: number;
  workerPid: number;
  /** /proc/<pid>/cmdline when it started, to tell it from a later process that got the same pid. */
  cmdline: string;
}

const DIR = 'children';

/** Records a running child of this worker under the run's state folder; returns the function that forgets it. */
export function trackChild(runStateDir: string, pid: number | undefined): () => void {
  if (pid === undefined) return () => {};
  const dir = path.join(runStateDir, DIR);
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${pid}.json`);
  const record: ChildRecord = { pid, workerPid: process.pid, cmdline: cmdlineOf(pid) ?? '' };
  writeFileSync(file, JSON.stringify(record));
  return () => rmSync(file, { force: true });
}

/** Stops children recorded by workers that are no longer alive; returns the pids it signalled. */
export function reapOrphans(stateRoot: string): number[] {
  const runs = runsDir(stateRoot);
  if (!existsSync(runs)) return [];
  const reaped: number[] = [];
  for (const run of readdirSync(runs)) {
    const dir = path.join(runs, run, DIR);
    if (!existsSync(dir)) continue;
    for (const entry of readdirSync(dir)) {
      const file = path.join(dir, entry);
      let record: ChildRecord;
      try {
        record = JSON.parse(readFileSync(file, 'utf8')) as ChildRecord;
      } catch {
        rmSync(file, { force: true });
        continue;
      }
      if (alive(record.workerPid)) continue;
      if (alive(record.pid) && cmdlineOf(record.pid) === record.cmdline) {
        try {
          process.kill(record.pid, 'SIGKILL');
          reaped.push(record.pid);
        } catch {
          // It ended meanwhile.
        }
      }
      rmSync(file, { force: true });
    }
  }
  return reaped;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function cmdlineOf(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return undefined;
  }
}
