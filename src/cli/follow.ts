/** Follows a run to its end, showing progress; Ctrl-C cancels the run (finally steps still run). */
import type { WorkflowHandle } from '@temporalio/client';
import { queryProgress, scenarioOutcome } from '../client.js';
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

export interface FollowOptions {
  /**
   * Where the live block is drawn. By default standard output when it is a terminal; `false` forces one
   * line per event (what CI logs and pipes get anyway).
   */
  terminal?: Terminal | false;
  /** The run's Web UI link, printed again under the final summary. */
  uiUrl?: string;
  pollMs?: number;
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
      await new Promise((r) => setTimeout(r, pollMs));
    }
  })();

  try {
    const result = await scenarioOutcome(handle);
    done = true;
    await poll;
    if (view) view.clear();
    else lines.update(result);
    write('');
    write(summaryTable(result));
    if (options.uiUrl) write(`Web UI: ${options.uiUrl}`);
    return { ...result, interrupted: interrupts > 0 };
  } finally {
    done = true;
    process.off('SIGINT', onInterrupt);
  }
}
