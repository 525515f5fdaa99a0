/**
 * Shows a run's progress. On a terminal: a block of one line per step (state, attempt, duration) redrawn in
 * place on each poll. Elsewhere (CI logs, pipes): one line per step event. Then a summary table.
 * The rendering is pure (state in, lines out) so that it can be tested without a terminal.
 */
import type proto from '@temporalio/proto';
import {
  cellNote,
  labWaitText,
  STATUS_MARKS,
  stepOfActivity,
  type CellRecord,
  type ScenarioResult,
  type StepRecord,
} from '../../workflows/types.js';

const MARK = STATUS_MARKS;

export type Write = (line: string) => void;

/** What Temporal says about the activity of a step that is running. */
export interface LiveAttempt {
  /** Temporal's attempt number of the step's current activity (restarts at 1 after a resume). */
  attempt: number;
  maximumAttempts?: number;
  /** True while the attempt waits for its retry backoff or a worker. */
  waiting: boolean;
  /** Why the previous attempt failed. */
  lastFailure?: string;
}

/** Current attempts by step id. */
export type LiveAttempts = ReadonlyMap<string, LiveAttempt>;

type PendingActivity = proto.temporal.api.workflow.v1.IPendingActivityInfo;

// PENDING_ACTIVITY_STATE_SCHEDULED: the enum's number, so this file needs no runtime proto import.
const PENDING_SCHEDULED = 1;

/**
 * Reads `describe().raw.pendingActivities`: the activity id is the step id, or `<id>#n` for a step run
 * again after a resume.
 */
export function liveAttempts(
  pending: readonly PendingActivity[] | null | undefined,
): Map<string, LiveAttempt> {
  const live = new Map<string, LiveAttempt>();
  for (const activity of pending ?? []) {
    const id = activity.activityId ?? '';
    const stepId = stepOfActivity(id);
    const entry: LiveAttempt = {
      attempt: activity.attempt || 1,
      waiting: Number(activity.state) === PENDING_SCHEDULED,
    };
    if (activity.maximumAttempts) entry.maximumAttempts = activity.maximumAttempts;
    const failure = activity.lastFailure;
    if (failure?.message) {
      const type = failure.applicationFailureInfo?.type;
      entry.lastFailure = type ? `${type}: ${failure.message}` : failure.message;
    }
    live.set(stepId, entry);
  }
  return live;
}

export interface RenderOptions {
  /** Epoch milliseconds: running steps show the time since they started. */
  now?: number;
  live?: LiveAttempts;
  /** The run's id, for the resume command a paused run shows. */
  runId?: string;
}

/** How to answer a paused run, with its real id. */
export function resumeHint(runId: string | undefined): string {
  return `answer with: tunnel-lab resume ${runId ?? 'RUN_ID'} --retry | --skip | --abort`;
}

/** How a step is named in every view: `id`, `id (finally)`, or `id (∥ group)` inside a parallel group. */
export function stepLabel(step: StepRecord): string {
  if (step.phase === 'finally') return `${step.id} (finally)`;
  return step.group ? `${step.id} (∥ ${step.group})` : step.id;
}

/** The attempt shown for a step: finished attempts, plus the one Temporal is running now. */
export function attemptOf(step: StepRecord, live?: LiveAttempts): number {
  const current = step.status === 'running' ? live?.get(step.id) : undefined;
  return current ? step.attempts + current.attempt : step.attempts;
}

function elapsed(
  step: Pick<StepRecord, 'status' | 'startedAt' | 'durationMs'>,
  now: number | undefined,
): number | undefined {
  if (step.status === 'running' && step.startedAt && now !== undefined) {
    return Math.max(0, now - Date.parse(step.startedAt));
  }
  return step.durationMs;
}

/** The summary table: one row per step; running steps show their current attempt and time so far. */
export function summaryTable(state: ScenarioResult, options: RenderOptions = {}): string {
  if (state.cells) return cellsTable(state, state.cells, options);
  // Once the run has ended, a step still pending never ran: say so rather than "pending".
  const ended = state.status !== 'running' && state.status !== 'paused';
  const rows = state.steps.map((s) => {
    const time = elapsed(s, options.now);
    return [
      stepLabel(s),
      s.uses,
      ended && s.status === 'pending' ? `${MARK.pending} not run` : `${MARK[s.status]} ${s.status}`,
      String(attemptOf(s, options.live)),
      time === undefined ? '' : seconds(time),
    ];
  });
  const header = ['step', 'action', 'status', 'attempts', 'time'];
  const out = table(header, rows);
  const seen = state.steps.filter((s) => s.evidence && s.evidence.length > 0);
  if (seen.length > 0) {
    out.push('', 'evidence:');
    for (const s of seen) {
      const [first, ...rest] = s.evidence!;
      out.push(`  ${MARK[s.status]} ${stepLabel(s)}: ${first}`, ...rest.map((line) => `      ${line}`));
    }
  }
  out.push('', `${state.playbook}: ${state.status}${state.error ? ` — ${state.error}` : ''}`);
  if (state.waitingForLab) out.push(labWaitText(state.waitingForLab));
  return out.join('\n');
}

/** How a cell shows: its status (`paused` while its run waits for an answer), mark, time and note. */
function cellView(c: CellRecord, now?: number): { status: string; mark: string; time: string; note: string } {
  const time = elapsed(c, now);
  return {
    status: c.paused ? 'paused' : c.status,
    mark: c.paused ? '⏸' : MARK[c.status],
    time: time === undefined ? '' : seconds(time),
    note: cellNote(c),
  };
}

/** `, cell X paused` (or `, N cells paused`) while cells wait for an answer. */
function pausedCells(cells: CellRecord[]): string {
  const paused = cells.filter((c) => c.paused);
  if (paused.length === 0) return '';
  return paused.length === 1 ? `, cell ${paused[0]!.id} paused` : `, ${paused.length} cells paused`;
}

/** A matrix run's summary: one row per cell, with its child run's id. */
function cellsTable(state: ScenarioResult, cells: CellRecord[], options: RenderOptions): string {
  const rows = cells.map((c) => {
    const view = cellView(c, options.now);
    return [c.id, `${view.mark} ${view.status}`, view.time, c.workflowId, view.note];
  });
  const out = table(['cell', 'status', 'time', 'run', 'error'], rows).map((line) => line.trimEnd());
  out.push('', `${state.playbook}: ${state.status}${state.error ? ` — ${state.error}` : ''}`);
  return out.join('\n');
}

/** One line for a cell's new state, as the non-terminal view prints it. */
export function cellEventLine(cell: CellRecord): string {
  const view = cellView(cell);
  const parts = [`${view.mark} cell ${cell.id}`, view.status];
  if (cell.status === 'running' && !cell.paused) parts.push(cell.workflowId);
  if (cell.durationMs !== undefined && cell.status !== 'running') parts.push(view.time);
  if (view.note) parts.push(`— ${view.note}`);
  return parts.join('  ');
}

/** The live block: a header line, then one line per step. Lines are cut to `columns` so none wraps. */
export function progressLines(
  state: ScenarioResult,
  options: RenderOptions & { columns?: number; runStartedAt?: number } = {},
): string[] {
  const units: { status: string }[] = state.cells ?? state.steps;
  const done = units.filter((s) => !['pending', 'running'].includes(s.status)).length;
  const took =
    options.runStartedAt !== undefined && options.now !== undefined
      ? `, ${clock(options.now - options.runStartedAt)}`
      : '';
  const where = state.waitingForLab
    ? labWaitText(state.waitingForLab)
    : state.cells
      ? `${done}/${state.cells.length} cells done${pausedCells(state.cells)}`
      : state.steps.length === 0 && state.status === 'running'
        ? 'loading the playbook'
        : `${done}/${state.steps.length} steps done`;
  const lines = [`${state.playbook}: ${state.status} — ${where}${took}`];
  const cellRows = (state.cells ?? []).map((c) => {
    const view = cellView(c, options.now);
    const detail = c.status === 'running' && !c.paused ? c.workflowId : view.note;
    return [`  ${view.mark} cell ${c.id}`, view.status, view.time, detail];
  });
  const rows = state.steps.map((s) => {
    const current = s.status === 'running' ? options.live?.get(s.id) : undefined;
    const attempt = attemptOf(s, options.live);
    const max = current?.maximumAttempts ? `/${s.attempts + current.maximumAttempts}` : '';
    const time = elapsed(s, options.now);
    let detail = '';
    if (s.status === 'running') {
      detail =
        current?.waiting && current.lastFailure
          ? `retrying after: ${current.lastFailure}`
          : (s.summary ?? s.uses);
    } else if (s.error) {
      detail = s.error;
    }
    return [
      `  ${MARK[s.status]} ${stepLabel(s)}`,
      s.status,
      attempt === 0 ? '' : `attempt ${attempt}${max}`,
      time === undefined ? '' : seconds(time),
      detail,
    ];
  });
  lines.push(...table(undefined, state.cells ? cellRows : rows));
  if (state.status === 'paused') {
    lines.push(`  ⏸ paused at ${state.pausedStep ?? '?'}: ${state.error ?? ''}`);
    lines.push(`    ${resumeHint(options.runId)}`);
  }
  const width = options.columns;
  return width ? lines.map((l) => fit(l, width)) : lines;
}

/**
 * The bytes that replace a block of `previous` lines (just printed, cursor below it) with `lines`:
 * cursor up to the block's first line, erase to the end of the screen, print the new block.
 */
export function redraw(previous: number, lines: string[]): string {
  const up = previous > 0 ? `\x1b[${previous}F` : '';
  return `${up}\x1b[J${lines.map((l) => `${l}\n`).join('')}`;
}

/** A terminal the live view can draw on. */
export interface Terminal {
  write(chunk: string): void;
  columns?: number;
  rows?: number;
}

/** The live view: redraws the block on each update; notes are printed above it and stay in the scrollback. */
export class LiveProgress {
  private shown = 0;
  private last: ScenarioResult | undefined;
  private live: LiveAttempts | undefined;

  constructor(
    private readonly terminal: Terminal,
    private readonly runStartedAt?: number,
    private readonly runId?: string,
  ) {}

  update(state: ScenarioResult, live?: LiveAttempts, now = Date.now()): void {
    this.last = state;
    this.live = live;
    this.draw(now);
  }

  /** Prints a line above the block (which stays below it). */
  note(line: string, now = Date.now()): void {
    this.terminal.write(redraw(this.shown, [line]));
    this.shown = 0;
    if (this.last) this.draw(now);
  }

  /** Removes the block, so that the final summary takes its place. */
  clear(): void {
    if (this.shown > 0) this.terminal.write(redraw(this.shown, []));
    this.shown = 0;
  }

  private draw(now: number): void {
    if (!this.last) return;
    let lines = progressLines(this.last, {
      now,
      live: this.live,
      columns: this.terminal.columns,
      runStartedAt: this.runStartedAt,
      ...(this.runId ? { runId: this.runId } : {}),
    });
    // The cursor cannot go above the screen's top: a block taller than the screen would smear.
    const room = (this.terminal.rows ?? Infinity) - 1;
    if (lines.length > room && room > 1) {
      lines = [...lines.slice(0, room - 1), `  … ${lines.length - room + 1} more lines`];
    }
    this.terminal.write(redraw(this.shown, lines));
    this.shown = lines.length;
  }
}

/** The non-terminal view: remembers what was printed and prints what changed since. */
export class ProgressPrinter {
  private seen = new Map<string, string>();
  private lastRunStatus: string | undefined;
  private lastWait: string | undefined;

  constructor(
    private readonly write: Write,
    private readonly runId?: string,
  ) {}

  update(state: ScenarioResult): void {
    const wait = state.waitingForLab && labWaitText(state.waitingForLab);
    if (wait && wait !== this.lastWait) this.write(`⧗ ${wait}`);
    this.lastWait = wait;
    for (const cell of state.cells ?? []) {
      const key = `cell:${cell.id}`;
      const now = cell.paused ? `paused:${cell.paused.step}` : cell.status;
      if (this.seen.get(key) === now) continue;
      const first = !this.seen.has(key);
      this.seen.set(key, now);
      if (first && cell.status === 'pending') continue;
      this.write(cellEventLine(cell));
    }
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
        this.write(`  ${resumeHint(this.runId)}`);
      }
      this.lastRunStatus = state.status;
    }
  }
}

/** One line for a step's new state, as the non-terminal view prints it. */
export function eventLine(step: StepRecord): string {
  const label = step.phase === 'finally' ? `${step.id} (finally)` : step.id;
  const parts = [`${MARK[step.status]} ${label}`, step.status];
  if (step.status === 'running') parts.push(step.summary ?? step.uses);
  if (step.attempts > 1) parts.push(`${step.attempts} attempts`);
  if (step.durationMs !== undefined && step.status !== 'running') parts.push(seconds(step.durationMs));
  if (step.error && step.status !== 'running') parts.push(`— ${step.error}`);
  return parts.join('  ');
}

function table(header: string[] | undefined, rows: string[][]): string[] {
  const all = header ? [header, ...rows] : rows;
  const count = Math.max(0, ...all.map((r) => r.length));
  // The last column is free text: it is not padded, so it does not widen the others.
  const widths = Array.from({ length: count }, (_, i) =>
    i === count - 1 && !header ? 0 : Math.max(0, ...all.map((r) => (r[i] ?? '').length)),
  );
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  const out = header ? [line(header), line(widths.map((w) => '-'.repeat(w)))] : [];
  return [...out, ...rows.map(line)];
}

function fit(line: string, columns: number): string {
  const max = Math.max(10, columns - 1);
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)}s`;
}

function clock(ms: number): string {
  const total = Math.max(0, Math.floor(ms / 1000));
  const m = Math.floor(total / 60);
  const s = String(total % 60).padStart(2, '0');
  return m >= 60 ? `${Math.floor(m / 60)}:${String(m % 60).padStart(2, '0')}:${s}` : `${m}:${s}`;
}
