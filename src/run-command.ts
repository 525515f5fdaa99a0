/**
 * How activities run a local program: argv through execa (never a shell), the activity's cancellation
 * signal, a heartbeat while it runs, and a record of the child so that a later worker can stop it if
 * this one dies.
 */
import { CommandNotFoundError } from './errors.js';
import type { CommandRequest } from './spawner/run-with-execa.js';
import type { Spawner } from './spawner/spawner.js';
import { trackChild } from './worker/orphans.js';

/**
 * What running a program needs of an activity: its cancellation, its heartbeat, the run's folder. Code
 * that runs outside an activity (a simulated tool, a test) may leave them out.
 */
export interface CommandContext {
  signal?: AbortSignal;
  heartbeat?(details?: unknown): void;
  /** The run's own folder, where the running children are recorded (for the next worker, if this one dies). */
  stateDir?: string;
}

const HEARTBEAT_MS = 1000;

export interface CommandOptions {
  cwd?: string;
  env?: Record<string, string>;
  /** Standard input; empty when unset. */
  input?: string;
  timeoutMs?: number;
  /** The message when the program does not exist (how to install or configure it). */
  notFound: string;
}

export interface CommandResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

let spawner: Spawner | undefined;

/**
 * From now on this process starts its commands through `next` (a worker does: see src/spawner/spawner.ts);
 * through none (itself) again once `next` is given back, unless another took its place meanwhile.
 */
export function useSpawner(next: Spawner): () => void {
  spawner = next;
  return () => {
    if (spawner === next) spawner = undefined;
  };
}

/** Runs `file args`; throws only on cancellation and on a missing program. */
export async function runCommand(
  ctx: CommandContext,
  file: string,
  args: string[],
  options: CommandOptions,
): Promise<CommandResult> {
  const beat = ctx.heartbeat && setInterval(() => ctx.heartbeat?.(), HEARTBEAT_MS);
  let release = () => {};
  try {
    const request: CommandRequest = {
      file,
      args,
      env: { ...(process.env as Record<string, string>), ...options.env },
      cwd: options.cwd ?? process.cwd(),
      input: options.input ?? '',
      ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
    };
    const onSpawned = (pid: number) => {
      if (ctx.stateDir) release = trackChild(ctx.stateDir, pid);
    };
    const result = spawner
      ? await spawner.run({ ...request, ...(ctx.signal ? { signal: ctx.signal } : {}), onSpawned })
      : // Loaded on first use: a worker runs its commands from the spawner and never needs execa itself,
        // and importing it costs a tenth of a second of the worker's start.
        await (await import('./spawner/run-with-execa.js')).runWithExeca(request, ctx.signal, onSpawned);
    if (result.isCanceled) throw ctx.signal?.reason ?? new Error('cancelled');
    if (result.notFound) throw new CommandNotFoundError(options.notFound);
    return {
      exitCode: result.exitCode ?? -1,
      stdout: result.stdout,
      stderr: result.stderr,
      timedOut: result.timedOut,
    };
  } finally {
    release();
    clearInterval(beat);
  }
}
