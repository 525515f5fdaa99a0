/**
 * The messages between a process and its spawner (src/spawner/spawner.ts, src/spawner/child.ts): what
 * to run, the pid once it runs, and how it ended. They cross a Node IPC channel ('advanced'
 * serialization), so they hold plain data only.
 */

/** One command, as run-command.ts gives it to execa. */
export interface SpawnRequest {
  type: 'run';
  id: number;
  file: string;
  args: string[];
  /** Already the whole environment: the spawner's own is not added. */
  env: Record<string, string>;
  cwd: string;
  input: string;
  timeoutMs?: number;
}

/** Stop the command `id` (its process group): as execa's cancelSignal does. */
export interface CancelRequest {
  type: 'cancel';
  id: number;
}

export type ToSpawner = SpawnRequest | CancelRequest;

export interface SpawnedReply {
  type: 'spawned';
  id: number;
  pid: number;
}

export interface SpawnResult {
  exitCode: number | undefined;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  isCanceled: boolean;
  /** The program does not exist (ENOENT on spawn). */
  notFound: boolean;
  /** What went wrong other than the program's own exit: a spawn error, a signal. */
  failure?: string;
}

export interface DoneReply {
  type: 'done';
  id: number;
  result: SpawnResult;
}

export type FromSpawner = SpawnedReply | DoneReply;
