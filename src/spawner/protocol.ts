/**
 * The messages between a process and its spawner (src/spawner/spawner.ts, src/spawner/child.ts): what
 * to run, the pid once it runs, and how it ended. They cross a Node IPC channel ('advanced'
 * serialization), so they hold plain data only.
 */
import type { CommandOutcome, CommandRequest } from './run-with-execa.js';

export interface SpawnRequest extends CommandRequest {
  type: 'run';
  id: number;
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

export interface DoneReply {
  type: 'done';
  id: number;
  result: CommandOutcome;
}

/** The spawner could not run the command at all (execa threw): the caller's promise rejects with it. */
export interface BrokenReply {
  type: 'broken';
  id: number;
  message: string;
}

export type FromSpawner = SpawnedReply | DoneReply | BrokenReply;
