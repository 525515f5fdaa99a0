/** Follows a run to its end, showing progress; Ctrl-C cancels the run (finally steps still run). */
import { isGrpcServiceError, ServiceError, type WorkflowHandle } from '@temporalio/client';
import { queryProgress, scenarioOutcome } from '../client.js';
import { TemporalUnavailableError } from '../errors.js';
import type { ScenarioResult } from '../../workflows/types.js';
import {
  liveAttempts,
  LiveProgress,
  ProgressPrinter,
  summaryTable,
  type Terminal,
  type Write,
} from './progress.js';

const POLL_MS = 500;

/** How long `run`, `resume` and `status --follow` wait for a Temporal server that stopped answering. */
export const OUTAGE_MS = 120_000;

export interface FollowOptions {
  /**
   * Where the live block is drawn. By default standard output when it is a terminal; `false` forces one
   * line per event (what CI logs and pipes get anyway).
   */
  terminal?: Terminal | false;
  /** The run's Web UI link, printed again under the final summary. */
  uiUrl?: string;
  pollMs?: number;
  /** How long to wait out a server that does not answer before giving up with exit 3 (OUTAGE_MS). */
  outageMs?: number;
}

/** Standard output as a terminal for the live view, or undefined when it is not one. */
export function stdoutTerminal(): Terminal | undefined {
  const stdout = process.stdout;
  if (!stdout.isTTY || process.env.TERM === 'dumb') return undefined;
  return {
    write: (chunk) => stdout.write(chunk),
    get columns() {
      return stdout.columns;
    },
    get rows() {
      return stdout.rows;
    },
  };
}

/** A followed run's result, and whether the user interrupted it (Ctrl-C) while it was followed. */
export type FollowResult = ScenarioResult & { interrupted: boolean };

/** The exit code for a followed run: 0 passed, 130 interrupted by the user, 1 otherwise. */
export function exitCodeOf(result: FollowResult): number {
  if (result.interrupted) return 130;
  return result.status === 'passed' ? 0 : 1;
}

/** Shows the run's progress until it ends, then the summary table; returns the run's result. */
export async function follow(
  handle: WorkflowHandle,
  write: Write,
  options: FollowOptions = {},
): Promise<FollowResult> {
  const terminal = options.terminal === undefined ? stdoutTerminal() : options.terminal || undefined;
  const pollMs = options.pollMs ?? POLL_MS;
  const lines = new ProgressPrinter(write, handle.workflowId);
  let view: LiveProgress | undefined;
  const say = (line: string) => (view ? view.note(line) : write(line));

  let done = false;
  // Ends the poll's wait between looks at once when the run ends, so the summary never waits it out.
  let wake = () => {};
  let interrupts = 0;
  const onInterrupt = () => {
    interrupts += 1;
    if (interrupts > 1) {
      view?.clear();
      write('second interrupt: leaving the run as it is');
      process.exit(130);
    }
    say('interrupt: cancelling the run (finally steps still run; press Ctrl-C again to leave it)');
    handle.cancel().catch((err: unknown) => say(`could not cancel: ${String(err)}`));
  };
  process.on('SIGINT', onInterrupt);

  const poll = (async () => {
    while (!done) {
      if (terminal) {
        // The attempt of a running step is known to Temporal only: ask for the pending activities too.
        const [state, description] = await Promise.all([
          queryProgress(handle).catch(() => undefined),
          handle.describe().catch(() => undefined),
        ]);
        view ??= description
          ? new LiveProgress(terminal, description.startTime.getTime(), handle.workflowId)
          : undefined;
        if (state && view && !done) view.update(state, liveAttempts(description?.raw.pendingActivities));
      } else {
        try {
          lines.update(await queryProgress(handle));
        } catch {
          // The workflow may not have run its first task yet, or has just closed.
        }
      }
      if (done) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, pollMs);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  })();

  try {
    const result = await outlast(
      () => scenarioOutcome(handle),
      say,
      options.outageMs ?? OUTAGE_MS,
      handle.workflowId,
    );
    done = true;
    wake();
    await poll;
    if (view) view.clear();
    else lines.update(result);
    write('');
    write(summaryTable(result));
    if (options.uiUrl) write(`Web UI: ${options.uiUrl}`);
    return { ...result, interrupted: interrupts > 0 };
  } finally {
    done = true;
    wake();
    process.off('SIGINT', onInterrupt);
  }
}

/**
 * Waits for `call` through a Temporal outage: while the server does not answer, it says so once, tries
 * again with backoff, and says when the server is back; after `limitMs` without an answer it gives up
 * with TemporalUnavailableError (exit 3). The run itself is Temporal's and goes on without this command.
 */
async function outlast<T>(
  call: () => Promise<T>,
  say: (line: string) => void,
  limitMs: number,
  workflowId: string,
): Promise<T> {
  let since: number | undefined;
  let delayMs = 500;
  for (;;) {
    try {
      const value = await call();
      if (since !== undefined) say(`Temporal answers again (after ${seconds(Date.now() - since)})`);
      return value;
    } catch (err) {
      if (!unreachable(err)) throw err;
      if (since === undefined) {
        since = Date.now();
        say(`Temporal does not answer (${messageOf(err)}); waiting for it, at most ${seconds(limitMs)}`);
      }
      if (Date.now() - since >= limitMs) {
        throw new TemporalUnavailableError(
          `Temporal did not answer for ${seconds(Date.now() - since)}; the run is kept by the server and goes ` +
            `on when it is back: follow it then with tunnel-lab resume ${workflowId}`,
          { cause: err },
        );
      }
      await new Promise((r) => setTimeout(r, delayMs));
      delayMs = Math.min(delayMs * 2, 5_000);
    }
  }
}

/** gRPC codes of a server that is down, restarting or out of reach. */
const UNAVAILABLE = 14;
const DEADLINE_EXCEEDED = 4;

function unreachable(err: unknown): boolean {
  const grpc = err instanceof ServiceError ? err.cause : err;
  return isGrpcServiceError(grpc) && [UNAVAILABLE, DEADLINE_EXCEEDED].includes(Number(grpc.code));
}

function messageOf(err: unknown): string {
  const cause = err instanceof ServiceError ? err.cause : undefined;
  return (cause instanceof Error ? cause.message : err instanceof Error ? err.message : String(err)).slice(
    0,
    200,
  );
}

function seconds(ms: number): string {
  return `${Math.round(ms / 1000)} s`;
}
