import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/activity';
import { vmDestroyAction } from '../activities/vm-destroy.js';
import { vmHaltAction } from '../activities/vm-halt.js';
import { parseMachineReadable, vmUpAction } from '../activities/vm-up.js';
import { simLab, type SimLab } from './support/sim-lab.js';

const ALL = ['external-proxy', 'k8s', 'external-app'];

/** The vagrant invocations the stand-in recorded, in order. */
async function vagrantCalls(lab: SimLab): Promise<{ at: string; argv: string[] }[]> {
  const text = await readFile(path.join(lab.simState, 'vagrant-calls.jsonl'), 'utf8');
  return text
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { at: string; argv: string[] });
}

const outputs: unknown[] = [];
async function output<T>(promise: Promise<{ output: unknown }>): Promise<T> {
  const outcome = await promise;
  outputs.push(outcome.output);
  return outcome.output as T;
}

describe('parseMachineReadable', () => {
  it('splits timestamp,target,type,data and unescapes commas and newlines', () => {
    expect(parseMachineReadable('1,k8s,state,running\n2,,ui,info,a%!(VAGRANT_COMMA) b\\nc\nnoise')).toEqual([
      { target: 'k8s', type: 'state', data: ['running'] },
      { target: '', type: 'ui', data: ['info', 'a, b\nc'] },
    ]);
  });
});

describe('vm.up, vm.halt and vm.destroy on the simulated lab', () => {
  let lab: SimLab;
  beforeAll(async () => {
    lab = await simLab();
  });
  afterAll(async () => {
    await lab?.close();
  });

  it('boots every machine in one vagrant up, then finds them running', async () => {
    expect(await output(lab.run(vmUpAction, {}))).toEqual({ started: ALL, alreadyRunning: [] });
    const ups = (await vagrantCalls(lab)).filter((c) => c.argv[0] === 'up');
    expect(ups.map((c) => c.argv)).toEqual([['up', '--provider', 'sim', ...ALL]]);
    expect(await output(lab.run(vmUpAction, {}))).toEqual({ started: [], alreadyRunning: ALL });
  });

  it('halts only running machines and destroys only existing ones', async () => {
    const app = { machines: ['external-app'] };
    expect(await output(lab.run(vmHaltAction, app))).toEqual({
      halted: ['external-app'],
      alreadyStopped: [],
    });
    expect(await output(lab.run(vmHaltAction, app))).toEqual({
      halted: [],
      alreadyStopped: ['external-app'],
    });
    expect(await output(lab.run(vmUpAction, { machines: ['external-app', 'k8s'] }))).toEqual({
      started: ['external-app'],
      alreadyRunning: ['k8s'],
    });
    expect(await output(lab.run(vmDestroyAction, app))).toEqual({
      destroyed: ['external-app'],
      alreadyAbsent: [],
    });
    expect(await output(lab.run(vmDestroyAction, app))).toEqual({
      destroyed: [],
      alreadyAbsent: ['external-app'],
    });
    expect(await output(lab.run(vmHaltAction, {}))).toEqual({
      halted: ['external-proxy', 'k8s'],
      alreadyStopped: ['external-app'],
    });
    expect(await output(lab.run(vmDestroyAction, {}))).toEqual({
      destroyed: ['external-proxy', 'k8s'],
      alreadyAbsent: ['external-app'],
    });
  });

  it('fails non-retryably for a machine the lab does not have', async () => {
    const err = await lab.run(vmUpAction, { machines: ['nope'] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect(err).toMatchObject({ type: 'LabConfigError', nonRetryable: true });
    expect((err as Error).message).toMatch(/no machine "nope"/);
  });

  it('rejects unknown input fields', async () => {
    const err = await lab.run(vmHaltAction, { machine: 'k8s' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ type: 'InputError', nonRetryable: true });
  });
});

describe('vm.up on a VirtualBox lab with a box', () => {
  let lab: SimLab;
  beforeAll(async () => {
    lab = await simLab((def) => {
      def.vagrant.provider = 'virtualbox';
      def.vagrant.box = 'bento/ubuntu-24.04';
      def.vagrant.boxVersion = '202502.21.0';
      def.sim.latency = { '^vagrant up': '100ms' };
    });
  });
  afterAll(async () => {
    await lab?.close();
  });

  it('adds the missing box once, before booting all machines serially in one vagrant up', async () => {
    const first = await output<Record<string, unknown>>(lab.run(vmUpAction, {}));
    expect(first).toEqual({
      started: ALL,
      alreadyRunning: [],
      boxAdded: 'bento/ubuntu-24.04 202502.21.0 (virtualbox)',
    });
    const argvs = (await vagrantCalls(lab)).map((c) => c.argv.join(' '));
    expect(argvs).toEqual([
      'status --machine-readable',
      'box list --machine-readable',
      'box add bento/ubuntu-24.04 --box-version 202502.21.0 --provider virtualbox',
      'up --provider virtualbox external-proxy k8s external-app',
      'status --machine-readable',
    ]);
    const status = (await lab.vagrant(['status', 'k8s', '--machine-readable'])).stdout;
    expect(status).toMatch(/^\d+,k8s,provider-name,virtualbox$/m);

    await output(lab.run(vmDestroyAction, { machines: ['k8s'] }));
    expect(await output(lab.run(vmUpAction, {}))).toEqual({
      started: ['k8s'],
      alreadyRunning: ['external-proxy', 'external-app'],
    });
    const again = (await vagrantCalls(lab)).map((c) => c.argv.join(' '));
    expect(again.filter((a) => a.startsWith('box add'))).toHaveLength(1);
    expect(again).toContain('up --provider virtualbox k8s');
  });
});

describe('vm.up against an injected vagrant failure', () => {
  let lab: SimLab;
  beforeAll(async () => {
    lab = await simLab((def) => {
      def.sim.faults = [{ match: '^vagrant up', calls: [2] }];
    });
  });
  afterAll(async () => {
    await lab?.close();
  });

  it('fails the attempt with a retryable LabToolError, and the retry boots what is missing', async () => {
    await output(lab.run(vmUpAction, { machines: ['external-proxy'] }));
    const err = await lab.run(vmUpAction, {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect(err).toMatchObject({ type: 'LabToolError', nonRetryable: false, details: [{ attempt: 1 }] });
    expect((err as Error).message).toMatch(
      /vagrant up .* failed with exit code 1: simulated failure of: vagrant up/,
    );

    const retry = await output<{ started: string[]; alreadyRunning: string[] }>(lab.run(vmUpAction, {}, 2));
    expect(retry).toEqual({ started: ['k8s', 'external-app'], alreadyRunning: ['external-proxy'] });
  });
});

describe('the outputs of all the runs above', () => {
  it('carry no key material', () => {
    expect(outputs.length).toBeGreaterThan(10);
    expect(JSON.stringify(outputs)).not.toMatch(/PRIVATE KEY/);
  });
});
