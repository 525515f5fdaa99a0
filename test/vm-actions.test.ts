import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/activity';
import { execa } from 'execa';
import { certFiles, certsGenerateAction } from '../activities/certs-generate.js';
import { vmDestroyAction } from '../activities/vm-destroy.js';
import { vmHaltAction } from '../activities/vm-halt.js';
import { vmTeardownAction } from '../activities/vm-teardown.js';
import { parseMachineReadable, vmUpAction } from '../activities/vm-up.js';
import { simLab, vagrantCalls, type SimLab } from './support/sim-lab.js';

const ALL = ['external-proxy', 'k8s', 'external-app'];

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

  it('halts instead of keeping a lab whose machines live in the run folder, and says why', async () => {
    await output(lab.run(vmUpAction, {}));
    const kept = await lab.run(vmTeardownAction, { mode: 'keep' });
    expect(kept.output).toMatchObject({ mode: 'halt', requested: 'keep', halted: ALL });
    expect(kept.evidence).toEqual([
      expect.stringMatching(/live in this run's folder \(lifetime: run\).*halted/),
    ]);
    expect(await output(lab.run(vmTeardownAction, { mode: 'halt' }))).toMatchObject({ halted: [] });
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
    // The states and the boxes are asked at once; no `vagrant status` follows the boot: reading each
    // machine's provisioning marker over ssh (all three as the lab wants) shows that it runs, and the three
    // ssh targets come from one `vagrant ssh-config`.
    expect(argvs.slice(0, 2).sort()).toEqual(['box list --machine-readable', 'status --machine-readable']);
    expect(argvs.slice(2)).toEqual([
      'box add bento/ubuntu-24.04 --box-version 202502.21.0 --provider virtualbox',
      'up --provider virtualbox external-proxy k8s external-app',
      'ssh-config external-proxy k8s external-app',
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

describe('vm.up on a half-provisioned machine', () => {
  let lab: SimLab;
  beforeAll(async () => {
    lab = await simLab((def) => {
      // The first provisioning of external-app stops after nginx started, before the marker.
      def.sim.faults = [
        { match: '^provision external-app', calls: [1], stderr: 'E: Unable to fetch some archives' },
      ];
    });
  });
  afterAll(async () => {
    await lab?.close();
  });

  it('fails the attempt, and the retry provisions the machine again instead of skipping it as running', async () => {
    const err = await lab.run(vmUpAction, {}).catch((e: unknown) => e);
    expect(err).toMatchObject({ type: 'LabToolError', nonRetryable: false });
    expect((err as Error).message).toMatch(/Unable to fetch some archives/);
    // Vagrant leaves the machine running after a failed provisioner.
    const status = (await lab.vagrant(['status', 'external-app', '--machine-readable'])).stdout;
    expect(status).toMatch(/^\d+,external-app,state,running$/m);

    const retry = await output<Record<string, unknown>>(lab.run(vmUpAction, {}, 2));
    expect(retry).toEqual({
      started: [],
      alreadyRunning: ALL,
      reprovisioned: [
        {
          machine: 'external-app',
          reason: 'no provisioning marker (never provisioned, or provisioning stopped half-way)',
        },
      ],
    });
    const calls = (await vagrantCalls(lab)).map((c) => c.argv.join(' '));
    expect(calls).toContain('provision external-app');
    // Healed: a third vm.up finds every marker as expected and provisions nothing.
    expect(await output(lab.run(vmUpAction, {}, 3))).toEqual({ started: [], alreadyRunning: ALL });
  });

  it('provisions the app again when certs.generate made new certificates, and nginx then serves them', async () => {
    await lab.run(certsGenerateAction, {});
    const healed = await output<{ reprovisioned?: { machine: string; reason: string }[] }>(
      lab.run(vmUpAction, {}),
    );
    expect(healed.reprovisioned).toEqual([
      {
        machine: 'external-app',
        reason: expect.stringMatching(
          /^ca is [0-9a-f]{12} on the machine, the lab wants [0-9a-f]{12}; cert is .*; temporary is yes on the machine, the lab wants no$/,
        ),
      },
    ]);
    const marker = await readFile(lab.def.machines['external-app']!.files.provisioned!, 'utf8');
    expect(marker).toMatch(/^temporary=no$/m);
    // nginx now asks for, and accepts, a client certificate of the new CA.
    const files = certFiles(lab.def.certsDir);
    const { port } = JSON.parse(await readFile(path.join(lab.simState, 'external-app.json'), 'utf8')) as {
      port: number;
    };
    const host = 'external-app.default.svc.cluster.local';
    const curl = await execa('curl', [
      ...['-sS', '-o', '/dev/null', '-w', '%{http_code}', '--resolve', `${host}:${port}:127.0.0.1`],
      ...['--cacert', files.caCert, '--cert', files.clientCert, '--key', files.clientKey],
      `https://${host}:${port}/`,
    ]);
    expect(curl.stdout).toBe('200');
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
