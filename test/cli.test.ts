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
afterAll(() => lab?.close());

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
    // Under each problem, its line and a caret at the spot, as compilers show them.
    expect(result.stderr).toContain('\n  4 |     uses: nope\n    |           ^');
  });

  it('explains usage errors with exit 2', async () => {
    expect((await run(['validate'])).exitCode).toBe(2);
    const unknown = await run(['frobnicate']);
    expect(unknown.exitCode).toBe(2);
    expect(unknown.stderr).toMatch(/unknown command "frobnicate"/);
  });
});

/** A stack frame in output: what no mistake a user can make should show. */
const STACK_FRAME = /^\s+at .+:\d+:\d+\)?$/m;

describe('tunnel-lab help, version and mistakes', () => {
  const commands = [
    'run',
    'status',
    'list',
    'resume',
    'cancel',
    'report',
    'validate',
    'actions',
    'schema',
    'server',
  ];

  it('answers --help for every command with its usage, options, examples and exit codes, and nothing else', async () => {
    for (const command of commands) {
      const help = await run([command, '--help']);
      expect({ command, exitCode: help.exitCode }).toEqual({ command, exitCode: 0 });
      expect(help.stdout).toMatch(new RegExp(`^usage: tunnel-lab ${command}\\b`, 'm'));
      expect(help.stdout).toMatch(/^examples:\n {2}tunnel-lab /m);
      expect(help.stdout).toMatch(/^ {2}130 {2}interrupted/m);
      // No server was started, no worker, no build: help has no side effects.
      expect(help.all).not.toMatch(/starting the embedded|Temporal at|building/);
    }
    const runHelp = (await run(['run', '-h'])).stdout;
    for (const option of ['--var NAME=VALUE', '--lab NAME', '--report DIR', '--pause-on-failure', '--detach'])
      expect(runHelp).toContain(option);
    expect((await run(['help', 'resume'])).stdout).toMatch(/--retry\s+run the failed step again/);
  });

  it("answers help, its version and the playbook commands without loading Temporal's SDK", async () => {
    const sdkLoaded = async (args: string[]) => {
      const result = await cli(args, {
        taskQueue: lab.taskQueue,
        stateRoot: lab.stateRoot,
        env: { NODE_OPTIONS: `--require ${path.join(root, 'test', 'fixtures', 'sdk-loaded.cjs')}` },
      });
      expect({ args, exitCode: result.exitCode }).toEqual({ args, exitCode: 0 });
      return /^temporal sdk loaded: (.*)$/m.exec(result.stderr)?.[1];
    };
    for (const args of [
      ['--help'],
      ['--version'],
      ['run', '--help'],
      ['validate', path.join(root, 'playbooks', 'hello.yaml')],
      ['actions', 'exec'],
      ['schema'],
    ])
      expect({ args, loaded: await sdkLoaded(args) }).toEqual({ args, loaded: 'none' });
    // What the probe sees when a command does talk to Temporal.
    expect(await sdkLoaded(['run', 'hello', '--dry-run'])).toMatch(/@temporalio\/client/);
  });

  it('prints its version', async () => {
    const version = await run(['--version']);
    expect(version.exitCode).toBe(0);
    expect(version.stdout).toMatch(/^tunnel-lab \d+\.\d+\.\d+$/);
  });

  it('names unknown playbooks, labs, actions and commands with the known ones, exit 2 and no stack trace', async () => {
    const playbook = await run(['run', 'helo']);
    expect(playbook.exitCode).toBe(2);
    expect(playbook.stderr).toMatch(
      /^unknown playbook "helo"; did you mean "hello"\? \(known: hello, http-tunnel, http-tunnels, mtls, mtls-tunnel, proxy-auth, sidecar-tunnel, sidecar-tunnels, tls-passthrough, tunnels\); or give a file path$/m,
    );
    const lab = await run(['run', 'hello', '--lab', 'simm']);
    expect(lab.exitCode).toBe(2);
    expect(lab.stderr).toMatch(
      /unknown lab "simm"; did you mean "sim"\? \(known: existing\.example, local, sim, vagrant\)/,
    );
    const action = await run(['actions', 'probe.crul']);
    expect(action.exitCode).toBe(2);
    expect(action.stderr).toMatch(/unknown action "probe\.crul"; did you mean "probe\.curl"\?/);
    const command = await run(['stauts']);
    expect(command.exitCode).toBe(2);
    expect(command.stderr).toMatch(/unknown command "stauts"; did you mean "status"\?/);
    for (const result of [playbook, lab, action, command]) expect(result.all).not.toMatch(STACK_FRAME);
  });

  it('explains a bad option or a missing value with the usage line, exit 2', async () => {
    const missing = await run(['run', 'hello', '--lab']);
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr).toMatch(/^--lab needs a value\nusage: tunnel-lab run PLAYBOOK /);
    const unknown = await run(['status', 'x', '--bogus']);
    expect(unknown.exitCode).toBe(2);
    expect(unknown.stderr).toMatch(/^unknown option --bogus\nusage: tunnel-lab status RUN_ID/);
    // Checked before anything starts: a run id that would name no folder of its own.
    const dots = await run(['run', 'hello', '--id', '..']);
    expect(dots.exitCode).toBe(2);
    expect(dots.stderr).toMatch(/^--id "\.\.": a run id is letters, digits and \. _ : @ -/m);
    const extra = await run(['cancel', 'a', 'b']);
    expect(extra.stderr).toMatch(/^unexpected argument "b"/);
    const vars = await run(['run', 'hello', '--var', 'nonsense']);
    expect(vars.exitCode).toBe(2);
    expect(vars.stderr).toMatch(/--var needs NAME=VALUE, got "nonsense"/);
    for (const result of [missing, unknown, extra, vars]) expect(result.all).not.toMatch(STACK_FRAME);
  });

  it('shows one action in full with its defaults and examples', async () => {
    const one = await run(['actions', 'probe.curl']);
    expect(one.exitCode).toBe(0);
    expect(one.stdout).toMatch(/^probe\.curl — Run curl inside a client pod/);
    expect(one.stdout).toMatch(/selector: .*\(default "app=curl"\)/);
    expect(one.stdout).toMatch(/^ {2}# Mutual TLS to the external app with the client certificate$/m);
    expect(one.stdout).not.toMatch(/^log\.expect/m);
  });

  it('refuses a YAML alias bomb, naming the file, without a stack trace', async () => {
    const bomb = await writePlaybook(
      'bomb',
      'name: bomb\na: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\nsteps: []\n',
    );
    const result = await run(['validate', bomb]);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toMatch(
      new RegExp(`^${bomb.replace(/[.]/g, '\\.')}:1:1: the YAML cannot be expanded: `),
    );
    expect(result.all).not.toMatch(STACK_FRAME);
  });

  it('says a run that does not exist, or has ended, cannot be looked at, resumed or cancelled', async () => {
    const status = await run(['status', 'no-such-run']);
    expect(status.exitCode).toBe(2);
    expect(status.stderr).toMatch(/^no run "no-such-run" \(tunnel-lab list shows the recent ones\)$/m);
    const id = uniqueQueue('cli-ended');
    expect((await run(['run', 'hello', '--id', id])).exitCode).toBe(0);
    const cancel = await run(['cancel', id]);
    expect(cancel.exitCode).toBe(2);
    expect(cancel.stderr).toMatch(
      new RegExp(`^run ${id} has already ended \\(completed\\); nothing to cancel$`, 'm'),
    );
    const resume = await run(['resume', id, '--retry']);
    expect(resume.exitCode).toBe(2);
    expect(resume.stderr).toMatch(/has already ended \(completed\); nothing to retry$/m);
    for (const result of [status, cancel, resume]) expect(result.all).not.toMatch(STACK_FRAME);
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
    // A duration of this test's own, so that another test run on the machine cannot be mistaken for it.
    const nap = `60.${process.pid}`;
    const file = await writePlaybook(
      'interrupted',
      `name: interrupted\nsteps:\n  - { id: long, uses: exec, with: { command: [sleep, '${nap}'] } }\nfinally:\n  - { id: cleanup, uses: exec, with: { command: [sh, -c, 'echo cleaned >> ${marks}'] } }\n`,
    );
    // Ctrl-C typed on a real terminal (a pty), so the signal reaches the CLI as it would from a person.
    // `exec`: script(1) runs the command through $SHELL, and a shell that stays in between (dash does)
    // would itself die of the Ctrl-C and give 130 whatever the CLI does.
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
    let typedAt: number | undefined;
    child.stdout.on('data', (chunk: Buffer) => {
      seen += chunk.toString();
      if (typedAt === undefined && seen.includes('▶ long')) {
        typedAt = Date.now();
        child.stdin.write('\x03');
      }
    });
    const result = await child;
    // Cancelling the step, running `finally` and stopping the in-process worker take about a second; the
    // worker is not waited on for long (it once held the CLI for 30 s on tasks it had been handed).
    const exitMs = Date.now() - typedAt!;
    expect(exitMs).toBeLessThan(4_000);
    expect(result.stdout).toMatch(/interrupt: cancelling the run/);
    expect(result.stdout).toMatch(/interrupted: cancelled/);
    // 130, as shells report a command that Ctrl-C stopped.
    expect(result.exitCode).toBe(130);
    expect(await readFile(marks, 'utf8')).toBe('cleaned\n');
    const sleeping = await execa('pgrep', ['-f', `^sleep ${nap.replace('.', '\\.')}$`], { reject: false });
    expect(sleeping.stdout).toBe('');
  });

  it('runs a playbook to the end with an in-process worker and exits 0; status and list show it', async () => {
    const reports = path.join(lab.stateRoot, 'hello-report');
    const result = await run([
      ...['run', 'hello', '--var', 'greeting=howdy', '--id', uniqueQueue('cli-hello'), '--report', reports],
    ]);
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
    // The report names no folder of this machine: the checkout is ".", the state root $TUNNEL_LAB_STATE.
    const html = await readFile(path.join(reports, 'report.html'), 'utf8');
    expect(html).toContain('<code>./playbooks/hello.yaml</code>');
    expect(html).not.toContain(root);
    expect(html).not.toContain(lab.stateRoot);
    // The Web UI's summary and details of the run: the playbook, its description and variables.
    const described = await lab.client.workflow.getHandle(id).describe();
    expect(await described.staticSummary()).toBe('hello');
    expect(await described.staticDetails()).toMatch(/\| greeting \| "howdy" \|/);
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
      // Header and footer agree: the run is paused, which Temporal counts as running.
      expect(paused.stdout).toMatch(new RegExp(`^run ${id}: paused \\(Temporal: running\\) `, 'm'));
      expect(paused.stdout).toMatch(/^gated: paused/m);
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
    const detached = await cli(['run', 'hello', '--detach', '--id', id], options);
    expect(detached.exitCode).toBe(0);
    // Detached, it says what the run waits for and how to follow it.
    expect(detached.stdout).toContain(
      `it runs when a worker serves task queue ${options.taskQueue} (npm run worker, or tunnel-lab server); ` +
        `follow it with: tunnel-lab resume ${id}`,
    );
    try {
      // A run no worker has picked up yet is listed with its playbook.
      expect((await cli(['list'], options)).stdout).toMatch(new RegExp(`${id}\\s+hello\\s+running`));
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

describe('tunnel-lab run --dry-run', () => {
  it('lists what each step would create and change on the lab, and starts nothing', async () => {
    // No server answers there: a dry run must not need one.
    const options = {
      taskQueue: lab.taskQueue,
      stateRoot: lab.stateRoot,
      env: { TEMPORAL_ADDRESS: '127.0.0.1:1' },
    };
    const vagrant = await cli(['run', 'tls-passthrough', '--lab', 'sim', '--dry-run'], options);
    expect(vagrant.exitCode).toBe(0);
    expect(vagrant.stdout).toContain('dry run of tls-passthrough: nothing is started');
    expect(vagrant.stdout).toMatch(
      /^ {2}vms \(vm\.up\):\n {4}- boot \(vagrant up\) and provision every machine of lab sim/m,
    );
    expect(vagrant.stdout).toContain('    - apply EnvoyFilter istio-system/egress-tcp-tunnel\n');
    expect(vagrant.stdout).toContain(
      "    - create Namespace default if absent (then removed with the run's objects), else label it: istio-injection=enabled\n",
    );
    expect(vagrant.stdout).toContain(
      '    - apply Sidecar default/tunnel-lab (outbound traffic REGISTRY_ONLY in default only)\n',
    );

    // On an existing cluster: no machines to boot, and the installed Istio is only read.
    const existing = await cli(
      [
        'run',
        'tls-passthrough',
        '--lab',
        path.join(root, 'labs', 'existing.example.yaml'),
        '--dry-run',
        '--var',
        'hostA=a.example',
      ],
      options,
    );
    expect(existing.exitCode).toBe(0);
    expect(existing.stdout).toContain('on lab existing-example (an existing cluster,');
    expect(existing.stdout).not.toMatch(/vagrant up|istioctl install/);
    expect(existing.stdout).toContain('    - apply ServiceEntry tunnel-lab/a.example\n');
    expect(existing.stdout).toContain('    - create Namespace tunnel-lab if absent');
    // Its own egress gateway: nothing outside the namespace changes.
    expect(existing.stdout).toContain('    - apply Deployment tunnel-lab/tunnel-lab-egress\n');
    expect(existing.stdout).toContain('    - apply EnvoyFilter tunnel-lab/egress-tcp-tunnel\n');
    expect(existing.stdout).not.toContain('istio-system');
    expect(existing.stdout).toMatch(
      /only read or skipped: tools, vms, kubeconfig, istio, credential, blocked, /,
    );
    // The example's proxy names no routes file of the run's: the credential steps change nothing there.
    expect(existing.stdout).not.toContain('credential (proxy.credential)');

    // A matrix: each cell's own listing.
    const matrix = await cli(['run', 'tunnels', '--lab', 'sim', '--dry-run'], options);
    expect(matrix.exitCode).toBe(0);
    expect(matrix.stdout).toMatch(/^cell tunnel=native-tunnel,\S+:$/m);
    expect(matrix.stdout).toContain('    - apply DestinationRule istio-system/external-proxy\n');
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
