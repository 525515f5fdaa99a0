import { mkdtemp, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { actions } from '../activities/registry.js';
import { PlaybookError } from '../src/errors.js';
import { loadPlaybookFile, parsePlaybook } from '../src/playbook/load.js';
import { root } from './support/temporal.js';
import type { PlanStep } from '../workflows/types.js';

const playbooksDir = path.join(root, 'playbooks');
const parse = (text: string, vars?: Record<string, unknown>) =>
  parsePlaybook(text, 'test.yaml', { playbooksDir, actions, vars });

function problemsOf(text: string, vars?: Record<string, unknown>): string[] {
  try {
    parse(text, vars);
  } catch (err) {
    if (err instanceof PlaybookError) return err.message.split('\n');
    throw err;
  }
  throw new Error('expected the playbook to be rejected');
}

describe('playbook loading', () => {
  it('turns a valid playbook into a plan with policies, summaries and interpolated vars', () => {
    const plan = parse(
      [
        'name: demo',
        'vars: { who: world, code: 3 }',
        'steps:',
        '  - id: a',
        '    uses: exec',
        '    timeout: 20s',
        '    retry: { attempts: 5, interval: 2s }',
        '    with: { command: [echo, "hello ${{ vars.who }}"], expect: { exitCode: "${{ vars.code }}" } }',
        '  - id: group',
        '    parallel:',
        '      - { id: b, uses: exec, with: { command: ["true"] } }',
        '      - { id: c, uses: exec, continueOnError: true, with: { command: ["false"] } }',
        'finally:',
        '  - { id: z, uses: exec, with: { command: ["true"] } }',
      ].join('\n'),
    );
    expect(plan.name).toBe('demo');
    const [a, group] = plan.steps;
    expect(a).toMatchObject({
      id: 'a',
      uses: 'exec',
      summary: 'exec echo hello world',
      with: { command: ['echo', 'hello world'], expect: { exitCode: 3 } },
      options: {
        startToCloseTimeout: '20s',
        heartbeatTimeout: '10s',
        retry: { maximumAttempts: 5, initialInterval: '2s', backoffCoefficient: 2 },
      },
      continueOnError: false,
    });
    expect(group).toMatchObject({ id: 'group', parallel: [{ id: 'b' }, { id: 'c', continueOnError: true }] });
    expect(plan.finally.map((s) => s.id)).toEqual(['z']);
  });

  it('lets a run override declared vars, keeping their type', () => {
    const plan = parse(
      'name: demo\nvars: { n: 0 }\nsteps:\n  - { id: a, uses: exec, with: { command: ["true"], expect: { exitCode: "${{ vars.n }}" } } }',
      { n: 1 },
    );
    expect(plan.steps[0]).toMatchObject({ with: { expect: { exitCode: 1 } } });
  });

  it('names file, line, column and field for an unknown action, listing the known ones', () => {
    const problems = problemsOf('name: demo\nsteps:\n  - id: a\n    uses: exce\n    with: {}\n');
    expect(problems).toEqual([
      expect.stringMatching(
        /^test\.yaml:4:11: steps\[0\]\.uses: unknown action "exce"; known actions: .*exec/,
      ),
    ]);
  });

  it('rejects unknown fields at the key that is wrong', () => {
    const problems = problemsOf(
      'name: demo\nsteps:\n  - id: a\n    uses: exec\n    with: { command: [ls], shell: true }\n    retires: 3\n',
    );
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^test\.yaml:6:5: steps\[0\]\.retires: unknown field "retires"/),
      ]),
    );
    const inWith = problemsOf(
      'name: demo\nsteps:\n  - id: a\n    uses: exec\n    with:\n      command: [ls]\n      shell: true\n',
    );
    expect(inWith).toEqual([
      expect.stringMatching(/^test\.yaml:7:7: steps\[0\]\.with\.shell: unknown field "shell"/),
    ]);
  });

  it('rejects duplicate step ids, also across parallel groups and finally', () => {
    const problems = problemsOf(
      'name: demo\nsteps:\n  - { id: a, uses: exec, with: { command: [ls] } }\n  - id: g\n    parallel:\n      - { id: a, uses: exec, with: { command: [ls] } }\nfinally:\n  - { id: g, uses: exec, with: { command: [ls] } }\n',
    );
    expect(problems).toEqual([
      expect.stringMatching(
        /^test\.yaml:6:15: steps\[1\]\.parallel\[0\]\.id: duplicate step id "a" \(first used at steps\[0\]\.id\)/,
      ),
      expect.stringMatching(/^test\.yaml:8:11: finally\[0\]\.id: duplicate step id "g"/),
    ]);
  });

  it('rejects undefined variables and undeclared overrides', () => {
    const problems = problemsOf(
      'name: demo\nvars: { greeting: hi }\nsteps:\n  - id: a\n    uses: exec\n    with: { command: [echo, "${{ vars.greting }}"] }\n',
      { colour: 'blue' },
    );
    expect(problems).toEqual([
      expect.stringMatching(
        /^test\.yaml:2:7: vars: the run sets variable "colour", which the playbook does not declare \(declared: greeting\)/,
      ),
      expect.stringMatching(
        /^test\.yaml:6:29: steps\[0\]\.with\.command\[1\]: undefined variable vars\.greting in \$\{\{ vars\.greting \}\}; defined: colour, greeting$/,
      ),
    ]);
  });

  it('reports missing required fields, wrong types and policy caps', () => {
    const problems = problemsOf(
      'name: demo\nsteps:\n  - id: a\n    uses: exec\n    timeout: 3h\n    retry: { attempts: 50 }\n    with: { command: [] }\n  - id: b\n    uses: exec\n    with: { expect: { exitCode: zero } }\n',
    );
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^test\.yaml:7:22: steps\[0\]\.with\.command: needs at least 1 item\(s\)$/),
        expect.stringMatching(
          /^test\.yaml:5:14: steps\[0\]\.timeout: timeout 3h is longer than exec allows \(2h\)/,
        ),
        expect.stringMatching(
          /^test\.yaml:6:24: steps\[0\]\.retry\.attempts: 50 attempts is more than exec allows \(20\)/,
        ),
        expect.stringMatching(
          /^test\.yaml:10:11: steps\[1\]\.with\.command: missing; it is required \(a list\)$/,
        ),
        expect.stringMatching(
          /^test\.yaml:10:33: steps\[1\]\.with\.expect\.exitCode: must be a number, not "zero"$/,
        ),
      ]),
    );
  });

  it('checks the members of a parallel group even when the group itself is wrong', () => {
    const problems = problemsOf(
      'name: demo\nsteps:\n  - id: g\n    colour: red\n    parallel:\n      - { id: a, uses: exec, with: {} }\n',
    );
    expect(problems).toEqual([
      expect.stringMatching(/^test\.yaml:4:5: steps\[0\]\.colour: unknown field "colour"$/),
      expect.stringMatching(
        /^test\.yaml:6:36: steps\[0\]\.parallel\[0\]\.with\.command: missing; it is required/,
      ),
    ]);
  });

  it("blames a bad value on the run's --var that set it, and says what is allowed", () => {
    const problems = problemsOf(
      'name: demo\nvars: { teardown: keep }\nsteps:\n  - id: a\n    uses: vm.teardown\n    with: { mode: "${{ vars.teardown }}" }\n',
      { teardown: 'nuke' },
    );
    expect(problems).toEqual([
      'test.yaml:6:19: steps[0].with.mode: --var teardown=nuke: must be one of "keep", "halt", "destroy", not "nuke"',
    ]);
  });

  it('reports YAML syntax errors with their position', () => {
    const problems = problemsOf('name: demo\nsteps:\n  - id: a\n    uses: [exec\n');
    expect(problems[0]).toMatch(/^test\.yaml:\d+:\d+: /);
  });

  it('says which file is missing', async () => {
    await expect(
      loadPlaybookFile(path.join(playbooksDir, 'nope.yaml'), { playbooksDir, actions }),
    ).rejects.toThrow(/nope\.yaml: no such playbook/);
  });

  it('accepts every playbook shipped in playbooks/', async () => {
    const files = (await readdir(playbooksDir)).filter((f) => f.endsWith('.yaml'));
    expect(files.length).toBeGreaterThan(0);
    for (const file of files) {
      const plan = await loadPlaybookFile(path.join(playbooksDir, file), { playbooksDir, actions });
      expect(plan.name).toBe(file.replace(/\.yaml$/, ''));
      expect(plan.steps.length).toBeGreaterThan(0);
    }
  });
});

describe('a playbook that extends another', () => {
  let dir: string;
  const write = async (name: string, text: string) => writeFile(path.join(dir, `${name}.yaml`), text);
  const load = (name: string) =>
    loadPlaybookFile(path.join(dir, `${name}.yaml`), { playbooksDir: dir, actions });
  const problems = async (name: string): Promise<string[]> => {
    try {
      await load(name);
    } catch (err) {
      if (err instanceof PlaybookError) return err.message.split('\n');
      throw err;
    }
    throw new Error('expected the playbook to be rejected');
  };

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'extends-'));
    await write(
      'base',
      [
        'name: base',
        'description: the base',
        'onFailure: pause',
        'vars: { greeting: hello, who: world }',
        'steps:',
        '  - id: say',
        '    uses: exec',
        "    with: { command: [echo, '${{ vars.greeting }} ${{ vars.who }}'] }",
        'finally:',
        '  - id: bye',
        '    uses: exec',
        '    with: { command: [echo, bye] }',
        '',
      ].join('\n'),
    );
  });

  it("runs the other's steps with its own name, defaults and matrix", async () => {
    await write(
      'child',
      'name: child\nextends: base\nvars: { who: mesh }\nmatrix: { axes: { greeting: [hi, hey] } }\n',
    );
    const plan = await load('child');
    expect(plan).toMatchObject({ name: 'child', description: 'the base', onFailure: 'pause' });
    expect(plan.vars).toEqual({ greeting: 'hello', who: 'mesh' });
    expect(plan.matrix!.cells.map((c) => c.id)).toEqual(['greeting=hi', 'greeting=hey']);
    expect((plan.steps[0] as PlanStep).with.command).toEqual(['echo', 'hello mesh']);
    expect(plan.finally.map((s) => s.id)).toEqual(['bye']);
    // A cell plans the base's steps with the cell's values.
    const cell = await loadPlaybookFile(path.join(dir, 'child.yaml'), {
      playbooksDir: dir,
      actions,
      vars: { greeting: 'hi' },
      cell: 'greeting=hi',
    });
    expect((cell.steps[0] as PlanStep).with.command).toEqual(['echo', 'hi mesh']);
  });

  it("reports a problem in the other's steps at its own file and line", async () => {
    await write('broken', 'name: broken\nsteps:\n  - id: x\n    uses: exec\n    with: { command: 3 }\n');
    await write('on-broken', 'name: on-broken\nextends: broken\n');
    expect(await problems('on-broken')).toEqual([
      expect.stringMatching(/broken\.yaml:5:22: steps\[0\]\.with\.command: /),
    ]);
  });

  it('refuses steps of its own, an undeclared variable, a missing or chained base, and itself', async () => {
    await write('own-steps', 'name: own-steps\nextends: base\nsteps: []\n');
    expect(await problems('own-steps')).toEqual([
      expect.stringMatching(
        /own-steps\.yaml:3:8: steps: a playbook that extends another runs that one's steps/,
      ),
    ]);
    await write('new-var', 'name: new-var\nextends: base\nvars: { colour: red }\n');
    expect(await problems('new-var')).toEqual([
      expect.stringMatching(
        /new-var\.yaml:3:\d+: vars\.colour: base declares no variable "colour" \(declared: greeting, who\)/,
      ),
    ]);
    await write('orphan', 'name: orphan\nextends: nowhere\n');
    expect(await problems('orphan')).toEqual([
      expect.stringMatching(/orphan\.yaml:2:\d+: extends: no playbook .*nowhere\.yaml to extend/),
    ]);
    await write('grandchild', 'name: grandchild\nextends: child\n');
    expect(await problems('grandchild')).toEqual([
      expect.stringMatching(/extends: child extends another playbook itself/),
    ]);
    await write('selfish', 'name: selfish\nextends: selfish\n');
    expect(await problems('selfish')).toEqual([
      expect.stringMatching(/extends: a playbook cannot extend itself/),
    ]);
    await write('pathy', 'name: pathy\nextends: ../base\n');
    expect(await problems('pathy')).toEqual([
      expect.stringMatching(/extends: must be the name of a playbook in the same folder/),
    ]);
  });
});

describe('playbook JSON Schema', () => {
  it('is generated from the actions and checked in up to date (regenerate: tunnel-lab schema --write)', async () => {
    const { readFile } = await import('node:fs/promises');
    const { playbookJsonSchema } = await import('../src/playbook/schema.js');
    const shipped: unknown = JSON.parse(await readFile(path.join(playbooksDir, 'schema.json'), 'utf8'));
    expect(shipped).toEqual(playbookJsonSchema(actions));
  });

  it('describes each action under its uses value, with field descriptions for editors', async () => {
    const { playbookJsonSchema } = await import('../src/playbook/schema.js');
    const text = JSON.stringify(playbookJsonSchema(actions));
    for (const action of actions) expect(text).toContain(`"const":"${action.name}"`);
    expect(text).toContain('Program and arguments, run directly (never through a shell).');
  });
});
