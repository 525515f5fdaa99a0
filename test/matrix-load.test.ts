/**
 * A playbook's `matrix:` expands into cells as GitHub Actions' `strategy.matrix` does, and every cell is
 * planned when the playbook loads, so a value that breaks a step is reported before any cell runs.
 */
import path from 'node:path';
import { actions } from '../activities/registry.js';
import { PlaybookError } from '../src/errors.js';
import { parsePlaybook } from '../src/playbook/load.js';
import { cellWorkflowIds, type PlanStep } from '../workflows/types.js';
import { root } from './support/temporal.js';

const playbooksDir = path.join(root, 'playbooks');
const parse = (text: string, options: { vars?: Record<string, unknown>; cell?: string } = {}) =>
  parsePlaybook(text, 'grid.yaml', { playbooksDir, actions, ...options });

function problemsOf(text: string, options: { vars?: Record<string, unknown>; cell?: string } = {}): string[] {
  try {
    parse(text, options);
  } catch (err) {
    if (err instanceof PlaybookError) return err.message.split('\n');
    throw err;
  }
  throw new Error('expected the playbook to be rejected');
}

const grid = (matrix: string[], vars = '{ tunnel: envoyfilter, proxy: http1, auth: none }') =>
  [
    'name: grid',
    `vars: ${vars}`,
    'matrix:',
    ...matrix.map((line) => `  ${line}`),
    'steps:',
    "  - { id: s, uses: exec, with: { command: [echo, '${{ vars.tunnel }}', '${{ vars.proxy }}'] } }",
    '',
  ].join('\n');

describe('a playbook matrix', () => {
  it('is every combination of the axes, less the excluded ones, with include entries extending or adding cells', () => {
    const plan = parse(
      grid([
        'axes: { tunnel: [envoyfilter, native], proxy: [http1, http2] }',
        'exclude: [{ tunnel: envoyfilter, proxy: http2 }]',
        'include:',
        '  - { tunnel: native, auth: basic }',
        '  - { tunnel: sidecar, proxy: http1 }',
        'maxParallel: 2',
      ]),
    );
    expect(plan.matrix).toEqual({
      cells: [
        { id: 'tunnel=envoyfilter,proxy=http1', vars: { tunnel: 'envoyfilter', proxy: 'http1' } },
        {
          id: 'tunnel=native,proxy=http1,auth=basic',
          vars: { tunnel: 'native', proxy: 'http1', auth: 'basic' },
        },
        {
          id: 'tunnel=native,proxy=http2,auth=basic',
          vars: { tunnel: 'native', proxy: 'http2', auth: 'basic' },
        },
        { id: 'tunnel=sidecar,proxy=http1', vars: { tunnel: 'sidecar', proxy: 'http1' } },
      ],
      failFast: true,
      maxParallel: 2,
    });
    // The parent's own steps are planned with the declared values.
    expect(plan.steps).toHaveLength(1);
  });

  it('plans a cell run as a plain run of its values, with no matrix', () => {
    const text = grid(['axes: { tunnel: [envoyfilter, native] }']);
    const plan = parse(text, { vars: { tunnel: 'native' }, cell: 'tunnel=native' });
    expect(plan.matrix).toBeUndefined();
    expect((plan.steps[0] as PlanStep).with.command).toEqual(['echo', 'native', 'http1']);
    expect(problemsOf(text, { vars: { tunnel: 'x' }, cell: 'tunnel=x' })).toEqual([
      'grid.yaml:4:3: matrix: the run is cell "tunnel=x", which the matrix has not (cells: tunnel=envoyfilter; tunnel=native)',
    ]);
  });

  it('names the line of an axis, include or exclude entry that is no variable of the playbook', () => {
    expect(
      problemsOf(
        grid([
          'axes: { tunnel: [native], mode: [a] }',
          'exclude: [{ proxy: http1 }, { mode: a }]',
          'include: [{ color: red }]',
        ]),
      ),
    ).toEqual([
      'grid.yaml:4:29: matrix.axes.mode: "mode" is not a variable of the playbook (declared: tunnel, proxy, auth)',
      'grid.yaml:6:15: matrix.include[0].color: "color" is not a variable of the playbook (declared: tunnel, proxy, auth)',
      'grid.yaml:5:15: matrix.exclude[0].proxy: "proxy" is not an axis of the matrix',
      'grid.yaml:5:33: matrix.exclude[1].mode: "mode" is not a variable of the playbook (declared: tunnel, proxy, auth)',
    ]);
  });

  it('refuses a run that sets a variable the matrix varies, and a value that breaks a step in one cell', () => {
    const text = grid(['axes: { tunnel: [envoyfilter, native] }']);
    expect(problemsOf(text, { vars: { tunnel: 'native' } })).toEqual([
      'grid.yaml:4:3: matrix: the run sets variable "tunnel", which the matrix varies: each cell sets it',
    ]);
    const broken = [
      'name: grid',
      'vars: { code: 0 }',
      'matrix: { axes: { code: [0, many] } }',
      'steps:',
      "  - { id: s, uses: exec, with: { command: ['true'], expect: { exitCode: '${{ vars.code }}' } } }",
      '',
    ].join('\n');
    expect(problemsOf(broken).join('\n')).toMatch(
      /^grid\.yaml:5:\d+: steps\[0\]\.with\.expect\.exitCode: in cell code=many: /,
    );
  });

  it("names each cell's run after the matrix run and the cell's values, in characters any path takes", () => {
    expect(
      cellWorkflowIds('run-1', [
        { id: 'tunnel=native,proxy=http2', vars: { tunnel: 'native', proxy: 'http2' } },
        { id: 'host=a b/c', vars: { host: 'a b/c' } },
        { id: 'host=a_b_c', vars: { host: 'a_b_c' } },
        { id: 'n=1', vars: { n: 1 } },
      ]),
    ).toEqual(['run-1.native-http2', 'run-1.a_b_c', 'run-1.a_b_c-2', 'run-1.1']);
  });

  it('has at most 64 cells, and needs axes or include entries', () => {
    const values = Array.from({ length: 9 }, (_, i) => i).join(', ');
    expect(problemsOf(grid([`axes: { tunnel: [${values}], proxy: [${values}] }`]))).toEqual([
      'grid.yaml:4:3: matrix: 81 cells; a matrix has at most 64',
    ]);
    expect(problemsOf(grid(['failFast: false']))).toEqual([
      'grid.yaml:4:3: matrix: a matrix needs axes or include entries',
    ]);
  });
});
