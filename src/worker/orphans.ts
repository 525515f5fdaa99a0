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
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { startTimeOf } from '../proc.js';
import { runsDir } from '../state-layout.js';

interface ChildRecord {
  pid: number;
  /** When the child started (see startTimeOf). */
  started: string;
  workerPid: number;
  workerStarted: string;
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
  const record: ChildRecord = {
    pid,
    started,
    workerPid: process.pid,
    workerStarted: startTimeOf(process.pid) ?? '',
  };
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
      let record: Partial<ChildRecord>;
      try {
        record = JSON.parse(readFileSync(file, 'utf8')) as Partial<ChildRecord>;
      } catch {
        rmSync(file, { force: true });
        continue;
      }
      if (typeof record.pid !== 'number' || typeof record.workerPid !== 'number') {
        rmSync(file, { force: true });
        continue;
      }
      // The worker that started it still runs: the child is its business.
      if (record.workerStarted && startTimeOf(record.workerPid) === record.workerStarted) continue;
      if (record.started && startTimeOf(record.pid) === record.started) {
        if (stop(record.pid)) reaped.push(record.pid);
      }
      rmSync(file, { force: true });
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
