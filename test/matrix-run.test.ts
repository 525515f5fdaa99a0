/**
 * A matrix run starts one child run per cell (ids `<parent>.<values>`, children of the parent in Temporal
 * and so in its Web UI), at most `maxParallel` at once, and ends with a table of its cells. With
 * `failFast`, the first cell that fails cancels the running cells (whose `finally` steps still run) and
 * the cells not started are skipped.
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { collectRunReport, writeReport } from '../src/report/index.js';
import type { ScenarioResult } from '../workflows/types.js';
import { cellEventLine, progressLines } from '../src/cli/progress.js';
import { renderDetails } from '../workflows/details.js';
import {
  eventually,
  outcome,
  root,
  start,
  writePlaybook,
  type TestLab,
  useWorker,
} from './support/temporal.js';

let lab: TestLab;
useWorker('matrix', (created) => (lab = created));

const statuses = (result: ScenarioResult) =>
  Object.fromEntries((result.cells ?? []).map((c) => [c.id, c.status]));

/** The most cells that ran at the same time, from their start and duration. */
function mostAtOnce(result: ScenarioResult): number {
  const edges = (result.cells ?? []).flatMap((c) => {
    if (!c.startedAt || c.durationMs === undefined) return [];
    const from = Date.parse(c.startedAt);
    return [
      { at: from, step: 1 },
      { at: from + c.durationMs, step: -1 },
    ];
  });
  edges.sort((a, b) => a.at - b.at || a.step - b.step);
  let now = 0;
  let most = 0;
  for (const edge of edges) most = Math.max(most, (now += edge.step));
  return most;
}

describe('a matrix run', () => {
  it('runs one child run per cell, at most maxParallel at once, and fails when a cell fails', async () => {
    const playbook = await writePlaybook(
      'grid',
      [
        'name: grid',
        'vars: { a: 1, b: x }',
        'matrix:',
        '  axes: { a: [1, 2], b: [x, y] }',
        '  exclude: [{ a: 2, b: y }]',
        '  include: [{ a: 3, b: z }]',
        '  failFast: false',
        '  maxParallel: 2',
        'steps:',
        "  - { id: say, uses: exec, with: { command: [echo, 'a=${{ vars.a }}'] } }",
        "  - { id: check, uses: exec, with: { command: [test, 'a=${{ vars.a }}', '!=', 'a=2'] } }",
        "  - { id: nap, uses: exec, with: { command: [sleep, '1'] } }",
        '',
      ].join('\n'),
    );
    const handle = await start(lab, { playbook });
    const result = await outcome(handle);
    expect(result).toMatchObject({ status: 'failed', steps: [] });
    expect(statuses(result)).toEqual({
      'a=1,b=x': 'passed',
      'a=1,b=y': 'passed',
      'a=2,b=x': 'failed',
      'a=3,b=z': 'passed',
    });
    expect(result.error).toBe('1 of 4 cells did not pass: a=2,b=x (failed)');
    expect(mostAtOnce(result)).toBe(2);

    // The report: a grid of the cells, a page per cell, and one JUnit suite per cell.
    const dir = await mkdtemp(path.join(os.tmpdir(), 'matrix-report-'));
    const report = await collectRunReport(handle, { namespace: 'default' });
    await writeReport(dir, report);
    const junit = await readFile(path.join(dir, 'junit.xml'), 'utf8');
    const schema = path.join(root, 'test', 'fixtures', 'junit.xsd');
    expect(
      (await execa('xmllint', ['--noout', '--schema', schema, path.join(dir, 'junit.xml')])).exitCode,
    ).toBe(0);
    expect(
      [...junit.matchAll(/<testsuite name="([^"]+)"[^>]* failures="(\d)"/g)].map((m) => [m[1], m[2]]),
    ).toEqual([
      ['grid [a=1,b=x]', '0'],
      ['grid [a=1,b=y]', '0'],
      ['grid [a=2,b=x]', '1'],
      ['grid [a=3,b=z]', '0'],
    ]);
    const html = await readFile(path.join(dir, 'report.html'), 'utf8');
    const grid = /<table class="grid">(.*?)<\/table>/s.exec(html)?.[1] ?? '';
    // Rows a=1..3, columns b=x, y, z; the combinations that are no cell are dashes.
    expect(
      [...grid.matchAll(/<tr><th>([^<]*)<\/th>(.*?)<\/tr>/g)].map((m) => [
        m[1],
        [...m[2]!.matchAll(/>(passed|failed|—)</g)].map((c) => c[1]),
      ]),
    ).toEqual([
      ['a \\ b', []],
      ['1', ['passed', 'passed', '—']],
      ['2', ['failed', '—', '—']],
      ['3', ['—', '—', 'passed']],
    ]);
    const second = await readFile(path.join(dir, 'cells', '2.html'), 'utf8');
    expect(second).toContain(result.cells![1]!.workflowId);

    for (const cell of result.cells!) {
      expect(cell.workflowId).toBe(`${handle.workflowId}.${cell.vars.a}-${cell.vars.b}`);
      const child = lab.client.workflow.getHandle(cell.workflowId);
      expect((await child.describe()).parentExecution?.workflowId).toBe(handle.workflowId);
      const run = await outcome(child);
      // Each cell ran the steps with its own values.
      const say = run.steps.find((s) => s.id === 'say')!;
      expect((say.output as { stdout: string }).stdout).toBe(`a=${cell.vars.a}`);
    }
  }, 120_000);

  it('with failFast, cancels the running cells (their finally steps run) and skips the rest', async () => {
    const playbook = await writePlaybook(
      'fast',
      [
        'name: fast',
        "vars: { name: '', cmd: 'true', arg: '' }",
        'matrix:',
        '  include:',
        "    - { name: slow, cmd: sleep, arg: '60' }",
        "    - { name: broken, cmd: 'false' }",
        "    - { name: later, cmd: 'true' }",
        '  maxParallel: 2',
        'steps:',
        "  - { id: run, uses: exec, with: { command: ['${{ vars.cmd }}', '${{ vars.arg }}'] } }",
        'finally:',
        "  - { id: after, uses: exec, with: { command: ['true'] } }",
        '',
      ].join('\n'),
    );
    const handle = await start(lab, { playbook });
    const result = await outcome(handle);
    expect(result.status).toBe('failed');
    const cells = new Map(result.cells!.map((c) => [String(c.vars.name), c]));
    const [slowCell, brokenCell, laterCell] = ['slow', 'broken', 'later'].map((name) => cells.get(name)!);
    expect(brokenCell!.status).toBe('failed');
    expect(slowCell!.status).toBe('cancelled');
    expect(slowCell!.error).toBe(`cancelled: cell ${brokenCell!.id} did not pass (failFast)`);
    expect(laterCell!.status).toBe('skipped');
    // The cancelled cell's run ran its finally step; the skipped cell never started a run.
    const slow = await lab.client.workflow.getHandle(slowCell!.workflowId).describe();
    expect(slow.status.name).toBe('CANCELLED');
    const slowRun = await lab.client.workflow
      .getHandle(slowCell!.workflowId)
      .query<ScenarioResult>('progress');
    expect(slowRun.steps.map((st) => [st.id, st.status])).toEqual([
      ['run', 'cancelled'],
      ['after', 'passed'],
    ]);
    await expect(lab.client.workflow.getHandle(laterCell!.workflowId).describe()).rejects.toThrow();
  }, 120_000);

  it('cancels its running cells when it is cancelled; their finally steps run', async () => {
    const playbook = await writePlaybook(
      'cancel-grid',
      [
        'name: cancel-grid',
        'vars: { n: 1 }',
        'matrix: { axes: { n: [1, 2] } }',
        'steps:',
        "  - { id: nap, uses: exec, with: { command: [sleep, '60'] } }",
        'finally:',
        "  - { id: after, uses: exec, with: { command: [echo, 'n=${{ vars.n }}'] } }",
        '',
      ].join('\n'),
    );
    const handle = await start(lab, { playbook });
    const running = async () => {
      const state = await handle.query<ScenarioResult>('progress');
      return state.cells?.every((c) => c.status === 'running') ? state : undefined;
    };
    let state = await running();
    for (let i = 0; i < 200 && !state; i++) {
      await new Promise((r) => setTimeout(r, 100));
      state = await running();
    }
    expect(state).toBeDefined();
    // The cells' first step has started before the run is cancelled.
    await new Promise((r) => setTimeout(r, 1500));
    await handle.cancel();
    await expect(handle.result()).rejects.toThrow();
    expect((await handle.describe()).status.name).toBe('CANCELLED');
    for (const cell of state!.cells!) {
      const child = lab.client.workflow.getHandle(cell.workflowId);
      expect((await child.describe()).status.name).toBe('CANCELLED');
      // A closed run still answers the progress query (its worker replays it): its finally step ran.
      const ended = await child.query<ScenarioResult>('progress');
      const after = ended.steps.find((st) => st.id === 'after')!;
      expect(after.status).toBe('passed');
      expect((after.output as { stdout: string }).stdout).toBe(`n=${cell.vars.n}`);
    }
  }, 120_000);

  it('shows a cell paused on a failure, with how to answer it, until its run is resumed', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'matrix-pause-'));
    const playbook = await writePlaybook(
      'pause-grid',
      [
        'name: pause-grid',
        'onFailure: pause',
        'vars: { n: 1 }',
        'matrix: { axes: { n: [1, 2] }, failFast: false }',
        'steps:',
        // Cell 2 fails until the file exists.
        `  - { id: check, uses: exec, retry: { attempts: 1 }, with: { command: [sh, -c, 'test "\${{ vars.n }}" = 1 || test -e ${dir}/ok'] } }`,
        '',
      ].join('\n'),
    );
    const handle = await start(lab, { playbook });
    const paused = await eventually(async () => {
      const state = await handle.query<ScenarioResult>('progress');
      return state.cells?.find((c) => c.paused) ? state : undefined;
    }, 60_000);
    const cell = paused.cells!.find((c) => c.paused)!;
    expect(cell).toMatchObject({ id: 'n=2', status: 'running', paused: { step: 'check' } });
    expect(cellEventLine(cell)).toMatch(
      new RegExp(
        `^⏸ cell n=2  paused  — paused at check: .*; answer with tunnel-lab resume ${cell.workflowId.replace(/\./g, '\\.')}$`,
      ),
    );
    expect(progressLines(paused)[0]).toMatch(/cells done, cell n=2 paused$/);
    expect(renderDetails(paused, handle.workflowId)).toContain(`| n=2 | ⏸ paused — paused at check:`);

    // Answered by the cell's own run id; the matrix run shows it running again, then passed.
    await writeFile(path.join(dir, 'ok'), '');
    await lab.client.workflow
      .getHandle(cell.workflowId)
      .executeUpdate('resume', { args: [{ action: 'retry' }] });
    const result = await outcome(handle);
    expect(statuses(result)).toEqual({ 'n=1': 'passed', 'n=2': 'passed' });
    expect(result.cells!.every((c) => c.paused === undefined)).toBe(true);
  }, 120_000);
});
