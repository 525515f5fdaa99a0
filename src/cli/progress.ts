/** Prints a run's progress: one line per step event, then a summary table. */
import type { ScenarioResult, StepRecord } from '../../workflows/types.js';

const MARK: Record<StepRecord['status'], string> = {
  pending: '·',
  running: '▶',
  passed: '✔',
  failed: '✘',
  skipped: '↷',
  cancelled: '⊘',
};

export type Write = (line: string) => void;

/** Remembers what was printed and prints what changed since. */
export class ProgressPrinter {
  private seen = new Map<string, string>();
  private lastRunStatus: string | undefined;

  constructor(private readonly write: Write) {}

  update(state: ScenarioResult): void {
    for (const step of state.steps) {
      const key = `${step.status}/${step.attempts}`;
      if (this.seen.get(step.id) === key) continue;
      const first = !this.seen.has(step.id);
      this.seen.set(step.id, key);
      if (first && step.status === 'pending') continue;
      this.write(eventLine(step));
    }
    if (state.status !== this.lastRunStatus) {
      if (state.status === 'paused') {
        this.write(`⏸ paused at ${state.pausedStep}: ${state.error ?? ''}`);
      }
      this.lastRunStatus = state.status;
    }
  }
}

function eventLine(step: StepRecord): string {
  const label = step.phase === 'finally' ? `${step.id} (finally)` : step.id;
  const parts = [`${MARK[step.status]} ${label}`, step.status];
  if (step.status === 'running') parts.push(step.summary ?? step.uses);
  if (step.attempts > 1) parts.push(`${step.attempts} attempts`);
  if (step.durationMs !== undefined && step.status !== 'running') parts.push(seconds(step.durationMs));
  if (step.error && step.status !== 'running') parts.push(`— ${step.error}`);
  return parts.join('  ');
}

export function summaryTable(state: ScenarioResult): string {
  const rows = state.steps.map((s) => [
    s.phase === 'finally' ? `${s.id} (finally)` : s.id,
    s.uses,
    `${MARK[s.status]} ${s.status}`,
    String(s.attempts),
    s.durationMs === undefined ? '' : seconds(s.durationMs),
  ]);
  const header = ['step', 'action', 'status', 'attempts', 'time'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  const out = [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
  out.push('', `${state.playbook}: ${state.status}${state.error ? ` — ${state.error}` : ''}`);
  return out.join('\n');
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)}s`;
}
