/** Follows a run to its end, printing progress; Ctrl-C cancels the run (finally steps still run). */
import type { WorkflowHandle } from '@temporalio/client';
import { queryProgress, scenarioOutcome } from '../client.js';
import type { ScenarioResult } from '../../workflows/types.js';
import { ProgressPrinter, summaryTable, type Write } from './progress.js';

const POLL_MS = 500;

export async function follow(handle: WorkflowHandle, write: Write): Promise<ScenarioResult> {
  const printer = new ProgressPrinter(write);
  let done = false;
  let interrupts = 0;
  const onInterrupt = () => {
    interrupts += 1;
    if (interrupts > 1) {
      write('second interrupt: leaving the run as it is');
      process.exit(130);
    }
    write('interrupt: cancelling the run (finally steps still run; press Ctrl-C again to leave it)');
    handle.cancel().catch((err: unknown) => write(`could not cancel: ${String(err)}`));
  };
  process.on('SIGINT', onInterrupt);
  const poll = (async () => {
    while (!done) {
      try {
        printer.update(await queryProgress(handle));
      } catch {
        // The workflow may not have run its first task yet, or has just closed.
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  })();
  try {
    const result = await scenarioOutcome(handle);
    done = true;
    await poll;
    printer.update(result);
    write('');
    write(summaryTable(result));
    return result;
  } finally {
    done = true;
    process.off('SIGINT', onInterrupt);
  }
}
