/**
 * Keeps track of the local processes activities start, so that a worker that starts after a crashed one
 * can stop what the dead worker left running: a command orphaned by a SIGKILLed worker would otherwise
 * finish its step a second time, behind the retry's back.
 *
 * A process is known by its pid and its start time, which (unlike its command line: a wrapper script
 * such as sim/bin/kubectl or Debian's /usr/bin/vagrant becomes `node ...` or `ruby ...` a moment after the
 * spawn) never changes, and tells it from a later process given the same pid. Children lead their own
 * process group (run-command spawns them detached), so stopping one stops what it started too.
 */
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { startTimeOf } from '../proc.js';
import { runsDir } from '../state-layout.js';
import { deadWorkersRecords, removeRecord, thisWorker, type WorkerStamp } from './worker-records.js';

interface ChildRecord extends WorkerStamp {
  pid: number;
  /** When the child started (see startTimeOf). */
  started: string;
}

const DIR = 'children';

/** Records a running child of this worker under the run's state folder; returns the function that forgets it. */
export function trackChild(runStateDir: string, pid: number | undefined): () => void {
  if (pid === undefined) return () => {};
  const started = startTimeOf(pid);
  // Gone already: nothing to track.
  if (started === undefined) return () => {};
  const dir = path.join(runStateDir, DIR);
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${pid}.json`);
  const record: ChildRecord = { pid, started, ...thisWorker() };
  writeFileSync(file, JSON.stringify(record));
  return () => removeRecord(file);
}

/** Stops children recorded by workers that are no longer alive; returns the pids it signalled. */
export function reapOrphans(stateRoot: string): number[] {
  const runs = runsDir(stateRoot);
  if (!existsSync(runs)) return [];
  const reaped: number[] = [];
  for (const run of readdirSync(runs)) {
    const dead = deadWorkersRecords<ChildRecord>(path.join(runs, run, DIR), (r) => typeof r.pid === 'number');
    for (const { file, record } of dead) {
      if (record.started && startTimeOf(record.pid) === record.started) {
        if (stop(record.pid)) reaped.push(record.pid);
      }
      removeRecord(file);
    }
  }
  return reaped;
}

/** SIGKILLs the process group `pid` leads, or the process alone when it leads none. */
function stop(pid: number): boolean {
  for (const target of [-pid, pid]) {
    try {
      process.kill(target, 'SIGKILL');
      return true;
    } catch {
      // No such group (or it ended meanwhile): try the process itself.
    }
  }
  return false;
}
