/** The `tunnel-lab` CLI and the plain `temporal` CLI against the real dev server, as users run them. */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import type { ScenarioResult } from '../workflows/types.js';
import { cli, temporalCli, temporalStart, workerProcess } from './support/processes.js';
import {
  connect,
  eventually,
  outcome,
  root,
  serverAddress,
  uniqueQueue,
  writePlaybook,
  type TestLab,
} from './support/temporal.js';

let lab: TestLab;
beforeAll(async () => {
  lab = await connect('cli');
});
afterAll(() => lab.close());

const run = (args: string[]) => cli(args, { taskQueue: lab.taskQueue, stateRoot: lab.stateRoot });

describe('tunnel-lab validate', () => {
  it('accepts good playbooks and rejects bad ones with file:line:column, exit 1', async () => {
    const bad = await writePlaybook('bad', 'name: bad\nsteps:\n  - id: a\n    uses: nope\n');
    const good = await run(['validate', 'hello']);
    expect(good.exitCode).toBe(0);
    expect(good.stdout).toMatch(/playbooks\/hello\.yaml: ok \(3 steps, 1 finally\)/);
    const result = await run(['validate', 'hello', bad]);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain(`${bad}:4:11: steps[0].uses: unknown action "nope"; known actions:`);
  });

  it('explains usage errors with exit 2', async () => {
    expect((await run(['validate'])).exitCode).toBe(2);
    const unknown = await run(['frobnicate']);
    expect(unknown.exitCode).toBe(2);
    expect(unknown.stderr).toMatch(/unknown command "frobnicate"/);
  });
});

describe('tunnel-lab actions and schema', () => {
  it('lists every action with its inputs', async () => {
    const result = await run(['actions', '--json']);
    expect(result.exitCode).toBe(0);
    const actions = JSON.parse(result.stdout) as { name: string; input: { properties: object } }[];
    expect(actions.map((a) => a.name)).toContain('exec');
    expect(Object.keys(actions.find((a) => a.name === 'exec')!.input.properties)).toContain('command');
  });
});

describe('tunnel-lab run / status / list / resume', () => {
  it('cancels the run on Ctrl-C, runs its finally steps and leaves nothing running', async () => {
    const marks = `${lab.stateRoot}/interrupt-marks`;
    const file = await writePlaybook(
      'interrupted',
      `name: interrupted\nsteps:\n  - { id: long, uses: exec, with: { command: [sleep, '60'] } }\nfinally:\n  - { id: cleanup, uses: exec, with: { command: [sh, -c, 'echo cleaned >> ${marks}'] } }\n`,
    );
    // Ctrl-C typed on a real terminal (a pty), so the signal reaches the CLI as it would from a person.
    // `exec`: script(1) runs the command through $SHELL, and a shell that stays in between (dash does)
    // would itself die of the Ctrl-C and turn the CLI's exit code into 130.
    const command = `exec node ${path.join(root, 'bin', 'tunnel-lab.js')} run ${file}`;
    const child = execa('script', ['-qefc', command, '/dev/null'], {
      env: {
        TEMPORAL_ADDRESS: serverAddress(),
        TEMPORAL_TASK_QUEUE: lab.taskQueue,
        TUNNEL_LAB_STATE: lab.stateRoot,
        TERM: 'dumb',
      },
      reject: false,
    });
    let seen = '';
    let typed = false;
    child.stdout.on('data', (chunk: Buffer) => {
      seen += chunk.toString();
      if (!typed && seen.includes('▶ long')) {
        typed = true;
        child.stdin.write('\x03');
      }
    });
    const result = await child;
    expect(result.stdout).toMatch(/interrupt: cancelling the run/);
    expect(result.stdout).toMatch(/interrupted: cancelled/);
    expect(result.exitCode).toBe(1);
    expect(await readFile(marks, 'utf8')).toBe('cleaned\n');
    const sleeping = await execa('pgrep', ['-f', '^sleep 60$'], { reject: false });
    expect(sleeping.stdout).toBe('');
  });

  it('runs a playbook to the end with an in-process worker and exits 0; status and list show it', async () => {
    const result = await run(['run', 'hello', '--var', 'greeting=howdy', '--id', uniqueQueue('cli-hello')]);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toMatch(/run (cli-hello\S+) started \(playbook hello\)/);
    expect(result.stdout).toMatch(/✔ greet\s+passed/);
    expect(result.stdout).toMatch(/hello: passed/);
    const id = /run (\S+) started/.exec(result.stdout)![1]!;
    const status = await run(['status', id, '--json']);
    expect(status.exitCode).toBe(0);
    const state = JSON.parse(status.stdout) as ScenarioResult & { temporalStatus: string };
    expect(state).toMatchObject({ temporalStatus: 'COMPLETED', status: 'passed' });
    expect(state.steps[0]!.output).toMatchObject({ stdout: 'howdy from tunnel-lab' });
    const list = await run(['list']);
    expect(list.stdout).toMatch(new RegExp(`${id}\\s+hello\\s+passed`));
  });

  it('exits 1 when the run fails, and 2 when the playbook is invalid before starting', async () => {
    const failing = await writePlaybook(
      'failing',
      "name: failing\nsteps:\n  - { id: a, uses: exec, retry: { attempts: 1 }, with: { command: ['false'] } }\n",
    );
    const result = await run(['run', failing]);
    expect(result.exitCode).toBe(1);
    expect(result.stdout).toMatch(/failing: failed — step a: ExpectationError: exit code 1/);
    const bad = await writePlaybook('bad', 'name: bad\nsteps: []\n');
    const invalid = await run(['run', bad]);
    expect(invalid.exitCode).toBe(2);
    expect(invalid.stderr).toMatch(/bad\.yaml:2:8: steps: /);
  });

  it('pauses with --pause-on-failure and resumes with tunnel-lab resume --retry', async () => {
    const gate = `${lab.stateRoot}/gate`;
    const file = await writePlaybook(
      'gated',
      `name: gated\nsteps:\n  - { id: gate, uses: exec, retry: { attempts: 1 }, with: { command: [test, -e, ${gate}] } }\n`,
    );
    const worker = workerProcess(lab.taskQueue, lab.stateRoot, 'cli-worker');
    try {
      const started = await run(['run', file, '--pause-on-failure', '--detach']);
      expect(started.exitCode).toBe(0);
      const id = /run (\S+) started/.exec(started.stdout)![1]!;
      const handle = lab.client.workflow.getHandle(id);
      await eventually(async () => {
        const state = (await handle.query('progress').catch(() => undefined)) as ScenarioResult | undefined;
        return state?.status === 'paused' ? true : undefined;
      });
      const paused = await run(['status', id]);
      expect(paused.stdout).toMatch(/gate\s+exec\s+✘ failed\s+1/);
      await writeFile(gate, '');
      const resumed = await run(['resume', id, '--retry']);
      expect(resumed.exitCode).toBe(0);
      expect(resumed.stdout).toMatch(/retry requested for step gate/);
      expect(resumed.stdout).toMatch(/gated: passed/);
    } finally {
      worker.kill('SIGTERM');
      await worker;
    }
  });

  it('status answers within seconds for a run that no worker serves, and says how to serve it', async () => {
    const options = { taskQueue: uniqueQueue('nobody'), stateRoot: lab.stateRoot };
    const id = uniqueQueue('unserved');
    expect((await cli(['run', 'hello', '--detach', '--id', id], options)).exitCode).toBe(0);
    try {
      const began = Date.now();
      const status = await cli(['status', id], options);
      expect(status.exitCode).toBe(0);
      expect(status.stdout).toMatch(/no worker answered the progress query: start one with `npm run worker`/);
      expect(Date.now() - began).toBeLessThan(15_000);
    } finally {
      await lab.client.workflow.getHandle(id).terminate('test over');
    }
  });

  it('reports a clear error when TEMPORAL_ADDRESS names a server that does not answer', async () => {
    const result = await cli(['list'], {
      taskQueue: lab.taskQueue,
      stateRoot: lab.stateRoot,
      env: { TEMPORAL_ADDRESS: '127.0.0.1:1' },
    });
    expect(result.exitCode).toBe(3);
    expect(result.stderr).toMatch(/no Temporal server answers at TEMPORAL_ADDRESS=127\.0\.0\.1:1/);
  });
});

describe('plain temporal CLI', () => {
  it('starts a run with `temporal workflow start --type tunnelScenario` and JSON input', async () => {
    const worker = workerProcess(lab.taskQueue, lab.stateRoot, 'temporal-cli-worker');
    const id = uniqueQueue('temporal-cli');
    try {
      const started = await temporalStart(
        lab.taskQueue,
        id,
        '{"playbook":"hello","vars":{"greeting":"hola"}}',
      );
      expect(started.stdout).toMatch(/WorkflowId\s+temporal-cli/);
      const result = await outcome(lab.client.workflow.getHandle(id));
      expect(result.status).toBe('passed');
      expect(result.steps[0]!.output).toMatchObject({ stdout: 'hola from tunnel-lab' });
      const query = await temporalCli(
        ['workflow', 'query'],
        ['-w', id, '--name', 'progress', '--output', 'json'],
      );
      expect(query.stdout).toMatch(/"status": ?"passed"/);
    } finally {
      worker.kill('SIGTERM');
      await worker;
    }
  });
});
