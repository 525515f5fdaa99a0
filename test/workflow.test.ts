/** The tunnelScenario workflow on the real dev server: passing, retrying, failing, pausing, cancelling. */
import { mkdtemp, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ActivityFailure, ApplicationFailure, WorkflowFailedError } from '@temporalio/client';
import { SCENARIO_FAILED, type ScenarioResult } from '../workflows/types.js';
import {
  eventually,
  outcome,
  root,
  runningChildren,
  start,
  writePlaybook,
  type TestLab,
  useWorker,
} from './support/temporal.js';

const fixture = (name: string) => path.join(root, 'test', 'fixtures', name);

let lab: TestLab;
useWorker('workflow', (created) => (lab = created));

async function progress(handle: { query: (name: string) => Promise<unknown> }): Promise<ScenarioResult> {
  return (await handle.query('progress')) as ScenarioResult;
}

describe('tunnelScenario', () => {
  it('runs the hello playbook to a passing result', async () => {
    const handle = await start(lab, { playbook: 'hello' });
    const result = (await handle.result()) as ScenarioResult;
    expect(result.status).toBe('passed');
    expect(result.steps.map((s) => [s.id, s.status, s.phase])).toEqual([
      ['greet', 'passed', 'main'],
      ['node-version', 'passed', 'main'],
      ['uname', 'passed', 'main'],
      ['cleanup', 'passed', 'finally'],
    ]);
    expect(result.steps[0]).toMatchObject({
      attempts: 1,
      output: { exitCode: 0, stdout: 'hi from tunnel-lab' },
    });
    expect(result.steps[1]!.group).toBe('both');
    expect(typeof result.steps[0]!.durationMs).toBe('number');
    const description = await handle.describe();
    expect(description.typedSearchAttributes.getAll().map((p) => [p.key.name, p.value])).toEqual(
      expect.arrayContaining([
        ['TunnelPlaybook', 'hello'],
        ['TunnelStatus', 'passed'],
      ]),
    );
  });

  it('applies run-time vars', async () => {
    const handle = await start(lab, { playbook: 'hello', vars: { greeting: 'hey' } });
    const result = (await handle.result()) as ScenarioResult;
    expect(result.steps[0]!.output).toMatchObject({ stdout: 'hey from tunnel-lab' });
  });

  it('retries a flaky step until it passes on its third attempt', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'flaky-'));
    const file = await writePlaybook(
      'flaky',
      `name: flaky\nsteps:\n  - id: flaky\n    uses: exec\n    retry: { attempts: 4, interval: 100ms }\n    with: { command: [node, ${fixture('flaky.mjs')}, ${dir}/count, '3'] }\n`,
    );
    const result = (await (await start(lab, { playbook: file })).result()) as ScenarioResult;
    expect(result.status).toBe('passed');
    expect(result.steps[0]).toMatchObject({
      status: 'passed',
      attempts: 3,
      output: { stdout: 'call 3: ok' },
    });
    expect(await readFile(`${dir}/count`, 'utf8')).toBe('3');
  });

  it('fails at once, without retries, on a playbook with an error, naming file and line', async () => {
    const file = await writePlaybook(
      'bad',
      'name: bad\nsteps:\n  - id: a\n    uses: exec\n    with: { comand: [ls] }\n',
    );
    const handle = await start(lab, { playbook: file });
    const err = await handle.result().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    const message = (err as WorkflowFailedError).cause?.message ?? '';
    expect(message).toMatch(/could not be loaded: PlaybookError: /);
    expect(message).toContain(`${file}:5:13: steps[0].with.comand: unknown field "comand"`);
    const history = await handle.fetchHistory();
    const started = history.events!.filter((e) => e.activityTaskStartedEventAttributes);
    expect(started).toHaveLength(1);
    expect(started[0]!.activityTaskStartedEventAttributes!.attempt).toBe(1);
  });

  it('refuses a workflow input naming a file outside the playbook folders, unread', async () => {
    // As `temporal workflow start --input` can send it: the worker must not read the host's files.
    const handle = await start(lab, { playbook: '../../../../../../../etc/passwd' });
    const result = await outcome(handle);
    expect(result.status).toBe('failed');
    expect(result.error).toMatch(/a playbook is a \.yaml or \.yml file/);
    const another = await outcome(await start(lab, { playbook: '/etc/../etc/passwd.yaml' }));
    expect(another.error).toMatch(/is outside the folders this worker reads playbooks from/);
    const history = JSON.stringify((await handle.fetchHistory()).events);
    expect(history).not.toMatch(/root:/);
  });

  it('fails the run when a step still fails after its retries, and still runs finally', async () => {
    const file = await writePlaybook(
      'failing',
      "name: failing\nsteps:\n  - { id: a, uses: exec, retry: { attempts: 2, interval: 100ms }, with: { command: ['false'] } }\n  - { id: b, uses: exec, with: { command: ['true'] } }\nfinally:\n  - { id: z, uses: exec, with: { command: ['true'] } }\n",
    );
    const handle = await start(lab, { playbook: file });
    const result = await outcome(handle);
    expect(result.status).toBe('failed');
    expect(result.error).toMatch(/step a: ExpectationError: exit code 1, expected 0/);
    // The failure keeps its chain: the run's failure, the step's activity, the action's typed error.
    const err = await handle.result().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    const run = (err as WorkflowFailedError).cause;
    expect(run).toBeInstanceOf(ApplicationFailure);
    expect(run).toMatchObject({ type: SCENARIO_FAILED });
    const step = run?.cause as ActivityFailure | undefined;
    expect(step).toBeInstanceOf(ActivityFailure);
    expect(step).toMatchObject({ activityId: 'a', activityType: 'exec' });
    expect(step?.cause).toBeInstanceOf(ApplicationFailure);
    expect(step?.cause).toMatchObject({ type: 'ExpectationError', message: 'exit code 1, expected 0' });
    expect(result.steps.map((s) => [s.id, s.status, s.attempts])).toEqual([
      ['a', 'failed', 2],
      ['b', 'pending', 0],
      ['z', 'passed', 1],
    ]);
  });

  it('goes on after a failing step marked continueOnError', async () => {
    const file = await writePlaybook(
      'continue',
      "name: continue\nsteps:\n  - { id: a, uses: exec, continueOnError: true, retry: { attempts: 1 }, with: { command: ['false'] } }\n  - { id: b, uses: exec, with: { command: ['true'] } }\n",
    );
    const result = (await (await start(lab, { playbook: file })).result()) as ScenarioResult;
    expect(result.status).toBe('passed');
    expect(result.steps.map((s) => s.status)).toEqual(['failed', 'passed']);
  });

  const pausing = async (name: string) => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'pause-'));
    const file = await writePlaybook(
      name,
      `name: ${name}\nonFailure: pause\nsteps:\n  - id: gate\n    uses: exec\n    retry: { attempts: 1 }\n    with: { command: [test, -e, ${dir}/open] }\n  - { id: after, uses: exec, with: { command: ['true'] } }\nfinally:\n  - { id: z, uses: exec, with: { command: ['true'] } }\n`,
    );
    const handle = await start(lab, { playbook: file });
    const paused = await eventually(async () => {
      const p = await progress(handle);
      return p.status === 'paused' ? p : undefined;
    });
    return { dir, handle, paused };
  };

  it('pauses a failed step and retries it on a resume update', async () => {
    const { dir, handle, paused } = await pausing('pause-retry');
    expect(paused).toMatchObject({
      pausedStep: 'gate',
      error: expect.stringMatching(/step gate: ExpectationError/),
    });
    const description = await handle.describe();
    expect(description.typedSearchAttributes.getAll().find((p) => p.key.name === 'TunnelStatus')?.value).toBe(
      'paused',
    );
    const rejected = await handle
      .executeUpdate('resume', { args: [{ action: 'bogus' }] })
      .catch((e: unknown) => e);
    expect((rejected as Error).cause).toMatchObject({
      message: expect.stringMatching(/one of retry, skip, abort/),
    });
    await import('node:fs/promises').then((fs) => fs.writeFile(`${dir}/open`, ''));
    await handle.executeUpdate('resume', { args: [{ action: 'retry' }] });
    const result = (await handle.result()) as ScenarioResult;
    expect(result.status).toBe('passed');
    expect(result.steps.map((s) => [s.id, s.status, s.attempts])).toEqual([
      ['gate', 'passed', 2],
      ['after', 'passed', 1],
      ['z', 'passed', 1],
    ]);
    await expect(handle.executeUpdate('resume', { args: [{ action: 'retry' }] })).rejects.toThrow();
  });

  it('skips a paused step on a resume signal', async () => {
    const { handle } = await pausing('pause-skip');
    await handle.signal('resume', { action: 'skip' });
    const result = (await handle.result()) as ScenarioResult;
    expect(result.steps.map((s) => [s.id, s.status])).toEqual([
      ['gate', 'skipped'],
      ['after', 'passed'],
      ['z', 'passed'],
    ]);
  });

  it('aborts a paused run on request, running finally', async () => {
    const { handle } = await pausing('pause-abort');
    await handle.executeUpdate('resume', { args: [{ action: 'abort' }] });
    const result = await outcome(handle);
    expect(result.status).toBe('failed');
    expect(result.error).toMatch(/^aborted after step gate/);
    expect(result.steps.map((s) => [s.id, s.status])).toEqual([
      ['gate', 'failed'],
      ['after', 'pending'],
      ['z', 'passed'],
    ]);
  });

  it('runs finally steps when the run is cancelled mid-step, once the step has stopped', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'cancel-'));
    const file = await writePlaybook(
      'cancel',
      `name: cancel\nsteps:\n  - { id: long, uses: exec, with: { command: [node, ${fixture('slow-stop.mjs')}, ${dir}/marks, long-stopped] } }\n  - { id: never, uses: exec, with: { command: ['true'] } }\nfinally:\n  - { id: cleanup, uses: exec, with: { command: [node, ${fixture('mark.mjs')}, ${dir}/marks, cleanup] } }\n`,
    );
    const handle = await start(lab, { playbook: file });
    await eventually(async () =>
      (await progress(handle)).steps[0]?.status === 'running' ? true : undefined,
    );
    // The sleep has started: the cancellation must reach a running command, not one about to start.
    await eventually(async () =>
      (await runningChildren(lab.stateRoot, handle.workflowId)).length > 0 ? true : undefined,
    );
    const began = Date.now();
    await handle.cancel();
    const err = await handle.result().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect(Date.now() - began).toBeLessThan(15_000);
    expect((await handle.describe()).status.name).toBe('CANCELLED');
    // The cancelled command took a second to stop; the teardown waited for it.
    expect(await readFile(`${dir}/marks`, 'utf8')).toBe('long-stopped\ncleanup\n');
    const final = await progress(handle);
    expect(final.status).toBe('cancelled');
    expect(final.steps.map((s) => [s.id, s.status])).toEqual([
      ['long', 'cancelled'],
      ['never', 'cancelled'],
      ['cleanup', 'passed'],
    ]);
  });
});
