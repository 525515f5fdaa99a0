/** The progress views: pure rendering (state → lines), the terminal redraw sequence, and following real runs. */
/* eslint-disable no-control-regex -- the terminal sequences under test start with ESC */
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { follow } from '../src/cli/follow.js';
import {
  liveAttempts,
  LiveProgress,
  progressLines,
  ProgressPrinter,
  redraw,
  summaryTable,
  type Terminal,
} from '../src/cli/progress.js';
import type { ScenarioResult } from '../workflows/types.js';
import {
  root,
  serverAddress,
  start,
  uniqueQueue,
  writePlaybook,
  type TestLab,
  useWorker,
} from './support/temporal.js';

const T0 = Date.parse('2026-01-01T10:00:00.000Z');
const at = (ms: number) => new Date(T0 + ms).toISOString();

const state: ScenarioResult = {
  playbook: 'hello',
  status: 'running',
  steps: [
    {
      id: 'greet',
      uses: 'exec',
      phase: 'main',
      status: 'passed',
      attempts: 1,
      startedAt: at(0),
      durationMs: 40,
    },
    {
      id: 'node-version',
      uses: 'exec',
      phase: 'main',
      group: 'both',
      status: 'running',
      attempts: 0,
      startedAt: at(100),
      summary: 'exec node --version',
    },
    {
      id: 'uname',
      uses: 'exec',
      phase: 'main',
      group: 'both',
      status: 'failed',
      attempts: 3,
      durationMs: 12_500,
      error: 'ExpectationError: exit code 1',
    },
    { id: 'cleanup', uses: 'exec', phase: 'finally', status: 'pending', attempts: 0 },
  ],
};

const live = liveAttempts([
  {
    activityId: 'node-version',
    attempt: 2,
    maximumAttempts: 3,
    state: 1, // scheduled: waiting for the retry
    lastFailure: { message: 'exit code 1, expected 0', applicationFailureInfo: { type: 'ExpectationError' } },
  },
]);

/** A tiny terminal: applies text, newlines, "cursor to previous line" (ESC [ n F) and "erase below" (ESC [ J). */
class Screen implements Terminal {
  lines: string[] = [];
  row = 0;
  frames: string[] = [];
  constructor(
    readonly columns?: number,
    readonly rows?: number,
  ) {}

  write(chunk: string): void {
    this.frames.push(chunk);
    const tokens = chunk.split(/(\x1b\[\d*F|\x1b\[J|\n)/).filter(Boolean);
    for (const token of tokens) {
      const up = /^\x1b\[(\d*)F$/.exec(token);
      if (up) this.row = Math.max(0, this.row - Number(up[1] || 1));
      else if (token === '\x1b[J') this.lines.length = this.row;
      else if (token === '\n') this.row += 1;
      else {
        expect(token).not.toMatch(/\x1b/);
        this.lines[this.row] = (this.lines[this.row] ?? '') + token;
      }
    }
  }

  get text(): string {
    return this.lines.slice(0, this.row).join('\n');
  }
}

describe('progress rendering', () => {
  it('shows a matrix run as its cells, with their child runs', () => {
    const matrix: ScenarioResult = {
      playbook: 'grid',
      status: 'running',
      steps: [],
      cells: [
        {
          id: 'a=1',
          vars: { a: 1 },
          workflowId: 'r/a=1',
          status: 'passed',
          startedAt: at(0),
          durationMs: 2000,
        },
        { id: 'a=2', vars: { a: 2 }, workflowId: 'r/a=2', status: 'running', startedAt: at(1000) },
        { id: 'a=3', vars: { a: 3 }, workflowId: 'r/a=3', status: 'pending' },
      ],
    };
    expect(progressLines(matrix, { now: T0 + 3500 })).toEqual([
      'grid: running — 1/3 cells done',
      '  ✔ cell a=1  passed   2.00s',
      '  ▶ cell a=2  running  2.50s  r/a=2',
      '  · cell a=3  pending',
    ]);
    expect(summaryTable({ ...matrix, status: 'failed', error: 'x' }, { now: T0 + 3500 })).toContain(
      'a=2   ▶ running  2.50s  r/a=2',
    );
    const printed: string[] = [];
    const printer = new ProgressPrinter((line) => printed.push(line));
    printer.update(matrix);
    printer.update(matrix);
    expect(printed).toEqual(['✔ cell a=1  passed  2.00s', '▶ cell a=2  running  r/a=2']);
  });

  it('shows a run waiting for its lab in the live block, the printed events and the summary', () => {
    const waiting: ScenarioResult = {
      ...state,
      steps: state.steps.map((s) => ({ ...s, status: 'pending', attempts: 0 })),
      waitingForLab: { lab: 'vagrant', heldBy: 'run-y' },
    };
    expect(progressLines(waiting)[0]).toBe('hello: running — waiting for lab vagrant, held by run run-y');
    expect(summaryTable(waiting).split('\n').at(-1)).toBe('waiting for lab vagrant, held by run run-y');
    const printed: string[] = [];
    const printer = new ProgressPrinter((line) => printed.push(line));
    printer.update(waiting);
    printer.update(waiting);
    printer.update({ ...waiting, waitingForLab: undefined });
    expect(printed).toEqual(['⧗ waiting for lab vagrant, held by run run-y']);
  });

  it('reads the current attempt from the pending activities, also for `<id>#n` after a resume', () => {
    const parsed = liveAttempts([
      ...[
        { activityId: 'flaky', attempt: 2, maximumAttempts: 3, state: 1, lastFailure: { message: 'boom' } },
      ],
      { activityId: 'gate#3', attempt: 1, state: 2 },
    ]);
    expect(Object.fromEntries(parsed)).toEqual({
      flaky: { attempt: 2, maximumAttempts: 3, waiting: true, lastFailure: 'boom' },
      gate: { attempt: 1, waiting: false },
    });
  });

  it('renders the summary table with the current attempt and the time so far of running steps', () => {
    expect(summaryTable(state, { live, now: T0 + 1600 })).toBe(
      [
        'step                   action  status     attempts  time',
        '---------------------  ------  ---------  --------  -----',
        'greet                  exec    ✔ passed   1         0.04s',
        'node-version (∥ both)  exec    ▶ running  2         1.50s',
        'uname (∥ both)         exec    ✘ failed   3         12.5s',
        'cleanup (finally)      exec    · pending  0',
        '',
        'hello: running',
      ].join('\n'),
    );
    // What the checks saw follows the table, one block per step.
    const seen = summaryTable({
      ...state,
      steps: state.steps.map((s) =>
        s.id === 'greet' ? { ...s, evidence: ['exit 0: hi from tunnel-lab', 'and a second line'] } : s,
      ),
    });
    expect(seen).toContain(
      [
        'evidence:',
        '  ✔ greet: exit 0: hi from tunnel-lab',
        '      and a second line',
        '',
        'hello: running',
      ].join('\n'),
    );
    // Once the run has ended, steps that never ran say so.
    expect(summaryTable({ ...state, status: 'failed' })).toMatch(
      /cleanup \(finally\)\s+exec\s+· not run\s+0/,
    );
    // Without live data (a finished run, or `status` of a closed one) the columns are the workflow's own.
    expect(summaryTable({ ...state, status: 'failed', error: 'step uname: boom' })).toMatch(
      /node-version \(∥ both\)\s+exec\s+▶ running\s+0\s*\n[\s\S]*\nhello: failed — step uname: boom$/,
    );
  });

  it('renders the live block: header, one line per step, retrying attempts, a pause hint, cut to the width', () => {
    const lines = progressLines(state, { live, now: T0 + 1600, runStartedAt: T0 - 2000 });
    expect(lines).toEqual([
      'hello: running — 2/4 steps done, 0:03',
      '  ✔ greet                  passed   attempt 1    0.04s',
      '  ▶ node-version (∥ both)  running  attempt 2/3  1.50s  retrying after: ExpectationError: exit code 1, expected 0',
      '  ✘ uname (∥ both)         failed   attempt 3    12.5s  ExpectationError: exit code 1',
      '  · cleanup (finally)      pending',
    ]);
    const running = progressLines(state, {
      live: liveAttempts([{ activityId: 'node-version', attempt: 1, state: 2 }]),
    });
    expect(running[2]).toMatch(/▶ node-version \(∥ both\)\s+running\s+attempt 1\s+exec node --version$/);
    const pausedState = {
      ...state,
      status: 'paused' as const,
      pausedStep: 'uname',
      error: 'step uname: boom',
    };
    const paused = progressLines(pausedState, { columns: 40, runId: 'hello-1' });
    expect(paused.slice(-2)).toEqual([
      '  ⏸ paused at uname: step uname: boom',
      '    answer with: tunnel-lab resume hel…',
    ]);
    expect(paused.every((l) => l.length <= 39)).toBe(true);
    // The hint carries the run's real id, on a wide terminal and in the plain view alike.
    expect(progressLines(pausedState, { runId: 'hello-1' }).at(-1)).toBe(
      '    answer with: tunnel-lab resume hello-1 --retry | --skip | --abort',
    );
    const plain: string[] = [];
    new ProgressPrinter((line) => plain.push(line), 'hello-1').update(pausedState);
    expect(plain.slice(-2)).toEqual([
      '⏸ paused at uname: step uname: boom',
      '  answer with: tunnel-lab resume hello-1 --retry | --skip | --abort',
    ]);
  });

  it('redraws a block in place: cursor up over the old block, erase below, print the new one', () => {
    expect(redraw(0, ['a', 'b'])).toBe('\x1b[Ja\nb\n');
    expect(redraw(3, ['x'])).toBe('\x1b[3F\x1b[Jx\n');
    expect(redraw(2, [])).toBe('\x1b[2F\x1b[J');
  });

  it('keeps one block on the screen over updates, notes above it, and clears it for the summary', () => {
    const screen = new Screen(200, 50);
    screen.write('run hello-1 started (playbook hello)\n');
    const view = new LiveProgress(screen, T0);
    const first: ScenarioResult = {
      ...state,
      steps: state.steps.map((s) => ({
        ...s,
        status: 'pending',
        attempts: 0,
        durationMs: undefined,
        error: undefined,
      })),
    };
    view.update(first, new Map(), T0 + 100);
    expect(screen.frames.at(-1)).toBe(
      `\x1b[J${progressLines(first, { now: T0 + 100, runStartedAt: T0, columns: 200 }).join('\n')}\n`,
    );
    view.update(state, live, T0 + 1600);
    expect(screen.frames.at(-1)!.startsWith('\x1b[5F\x1b[J')).toBe(true);
    expect(screen.text).toBe(
      [
        'run hello-1 started (playbook hello)',
        ...progressLines(state, { live, now: T0 + 1600, runStartedAt: T0, columns: 200 }),
      ].join('\n'),
    );
    view.note('interrupt: cancelling the run', T0 + 1700);
    expect(screen.lines[1]).toBe('interrupt: cancelling the run');
    expect(screen.lines[2]).toMatch(/^hello: running — 2\/4 steps done/);
    expect(screen.lines).toHaveLength(7);
    view.clear();
    screen.write('summary\n');
    expect(screen.text).toBe('run hello-1 started (playbook hello)\ninterrupt: cancelling the run\nsummary');
  });

  it('shortens a block taller than the screen, so that the cursor can still reach its top', () => {
    const screen = new Screen(80, 4);
    new LiveProgress(screen).update(state, live, T0);
    expect(screen.lines).toEqual([
      ...progressLines(state, { live, now: T0, columns: 80 }).slice(0, 2),
      '  … 3 more lines',
    ]);
  });

  it('prints one line per step event when not on a terminal', () => {
    const out: string[] = [];
    const printer = new ProgressPrinter((l) => out.push(l), 'hello-2');
    printer.update(state);
    printer.update(state);
    printer.update({ ...state, status: 'paused', pausedStep: 'uname', error: 'boom' });
    expect(out).toEqual([
      '✔ greet  passed  0.04s',
      '▶ node-version  running  exec node --version',
      '✘ uname  failed  3 attempts  12.5s  — ExpectationError: exit code 1',
      '⏸ paused at uname: boom',
      '  answer with: tunnel-lab resume hello-2 --retry | --skip | --abort',
    ]);
  });
});

describe('following real runs', () => {
  let lab: TestLab;
  useWorker('progress', (created) => (lab = created));

  it('draws the live block on a terminal with the retrying attempt, then the summary and the Web UI link', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'progress-'));
    const file = await writePlaybook(
      'retrying',
      `name: retrying\nsteps:\n  - id: flaky\n    uses: exec\n    retry: { attempts: 3, interval: 1500ms }\n    with: { command: [node, ${path.join(root, 'test', 'fixtures', 'flaky.mjs')}, ${dir}/count, '2'] }\nfinally:\n  - { id: cleanup, uses: exec, with: { command: ['true'] } }\n`,
    );
    const handle = await start(lab, { playbook: file });
    const screen = new Screen(160, 40);
    const result = await follow(handle, (line) => screen.write(`${line}\n`), {
      terminal: screen,
      pollMs: 100,
      uiUrl: 'http://127.0.0.1:8233/namespaces/default/workflows/x',
    });
    expect(result.status).toBe('passed');
    expect(
      screen.frames.some((f) =>
        /▶ flaky\s+running\s+attempt 2\/3\s+[\d.]+s\s+retrying after: ExpectationError/.test(f),
      ),
    ).toBe(true);
    expect(screen.frames.filter((f) => /\x1b\[\d+F\x1b\[J/.test(f)).length).toBeGreaterThan(3);
    // The block is gone; the summary table and the link stay.
    expect(screen.text).toMatch(/^\nstep\s+action\s+status\s+attempts\s+time\n/);
    expect(screen.text).toMatch(
      /flaky\s+exec\s+✔ passed\s+2\s+[\d.]+s\ncleanup \(finally\)\s+exec\s+✔ passed\s+1/,
    );
    expect(screen.text).toMatch(
      /retrying: passed\nWeb UI: http:\/\/127\.0\.0\.1:8233\/namespaces\/default\/workflows\/x$/,
    );
  });

  it('prints the summary as soon as the run ends, not after the wait between its looks at the progress', async () => {
    const handle = await start(lab, { playbook: 'hello' });
    const out: string[] = [];
    const began = Date.now();
    // One look at the start, then a wait far longer than the run: only the run's end may cut it short.
    const result = await follow(handle, (line) => out.push(line), { terminal: false, pollMs: 600_000 });
    expect(result.status).toBe('passed');
    expect(Date.now() - began).toBeLessThan(60_000);
    expect(out.join('\n')).toMatch(/\ncleanup \(finally\)\s+exec\s+✔ passed/);
  }, 120_000);

  it('`tunnel-lab run` redraws in place on a real terminal (a pty)', async () => {
    const stateRoot = await mkdtemp(path.join(os.tmpdir(), 'progress-tty-'));
    const id = uniqueQueue('tty');
    const file = await writePlaybook(
      'slow',
      "name: slow\nsteps:\n  - { id: greet, uses: exec, with: { command: [echo, hi] } }\n  - { id: nap, uses: exec, with: { command: [sleep, '1.5'] } }\n",
    );
    const command = `node ${path.join(root, 'bin', 'tunnel-lab.js')} run ${file} --id ${id}`;
    const result = await execa('script', ['-qefc', command, '/dev/null'], {
      env: {
        TEMPORAL_ADDRESS: serverAddress(),
        TEMPORAL_TASK_QUEUE: uniqueQueue('tty-queue'),
        TEMPORAL_UI_URL: 'http://127.0.0.1:8233',
        TUNNEL_LAB_STATE: stateRoot,
        TERM: 'xterm',
      },
      reject: false,
    });
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toMatch(/\x1b\[\d+F\x1b\[J/);
    expect(result.stdout).toMatch(
      /slow: running — 1\/2 steps done, 0:0\d\r?\n {2}✔ greet\s+passed\s+attempt 1\s+[\d.]+s\r?\n {2}▶ nap\s+running\s+attempt 1\/1\s+[\d.]+s\s+exec sleep 1\.5/,
    );
    expect(result.stdout).toMatch(/greet\s+exec\s+✔ passed\s+1/);
    expect(result.stdout).toMatch(
      /slow: passed\r?\nWeb UI: http:\/\/127\.0\.0\.1:8233\/namespaces\/default\/workflows\//,
    );
  });
});
