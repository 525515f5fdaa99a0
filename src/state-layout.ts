/**
 * Where runs and labs keep their files under the state root (TUNNEL_LAB_STATE, `.state` by default):
 *
 *   runs/<run id>/            a run's own files: rendered manifests, log marks, the processes it runs
 *   runs/<run id>/lab/        its lab's state (`{state}` of a lab file with `lifetime: run`)
 *   runs/<run id>/children/   the local processes its activities have running (src/worker/orphans.ts)
 *   labs/<lab name>/          the state of a lab with `lifetime: lab`, kept between runs
 *   workers/tasks/            the steps this host's workers are running (src/worker/task-ledger.ts)
 */
import path from 'node:path';

/** The folder of all runs. */
export function runsDir(stateRoot: string): string {
  return path.join(stateRoot, 'runs');
}

/**
 * A run's own folder. The run id becomes one folder name, one to one: characters other than letters,
 * digits, `_` and `-` (and `.` past the first) are written %XX, so `a/b` and `a_b` stay apart and `..`
 * or `.x` name no folder of their own.
 */
export function runDir(stateRoot: string, workflowId: string): string {
  return path.join(runsDir(stateRoot), folderName(workflowId));
}

export function folderName(id: string): string {
  const escape = (c: string) =>
    [...Buffer.from(c, 'utf8')].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join('');
  return [...id].map((c, i) => (/[A-Za-z0-9_-]/.test(c) || (c === '.' && i > 0) ? c : escape(c))).join('');
}

/** The lab state of a run whose lab lives as long as the run. */
export function runLabDir(stateRoot: string, workflowId: string): string {
  return path.join(runDir(stateRoot, workflowId), 'lab');
}

/** Where labs with `lifetime: lab` keep their state. */
export function keptLabsDir(stateRoot: string): string {
  return path.join(stateRoot, 'labs');
}

/** The ledger of the steps this host's workers are running, one file per task. */
export function workerTasksDir(stateRoot: string): string {
  return path.join(stateRoot, 'workers', 'tasks');
}
