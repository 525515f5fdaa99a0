import type { LogEntry } from '@temporalio/worker';
import { DefaultLogger, Runtime } from './sdk.js';

/**
 * One line per log entry, without stack traces: a step's failure is reported in the run's progress and
 * history, so the worker's console only needs to say that it happened.
 */
export function installCompactLogger(
  write: (line: string) => void = (line) => console.log(line),
  options: { handleSignals?: boolean } = {},
): void {
  Runtime.install({
    logger: new DefaultLogger('INFO', (entry) => write(formatEntry(entry))),
    // A program that handles Ctrl-C itself (the CLI cancels the run first) must not have its
    // in-process worker shut down, and the signal raised again, behind its back.
    ...(options.handleSignals === false ? { shutdownSignals: [] } : {}),
  });
}

export function formatEntry(entry: LogEntry): string {
  const time = new Date(Number(entry.timestampNanos / 1_000_000n)).toISOString();
  const meta = entry.meta ?? {};
  const context = ['workflowId', 'activityId', 'activityType', 'attempt', 'state']
    .filter((key) => meta[key] !== undefined)
    .map((key) => `${key}=${String(meta[key])}`);
  const error = meta.error instanceof Error ? meta.error.message : undefined;
  return [
    time,
    entry.level,
    entry.message,
    ...context,
    ...(error ? [`error=${JSON.stringify(error)}`] : []),
  ].join(' ');
}
