import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { parse } from 'yaml';
import { istioctl } from '../sim/istioctl/main.js';
import { runCall } from '../sim/lib/tool-io.js';
import { parseSshConfig, SshSession } from '../src/lab/ssh.js';
import { simLab, type SimLab } from './support/sim-lab.js';
import { alive } from './support/processes.js';

const MACHINES = ['external-proxy', 'k8s', 'external-app'];

let lab: SimLab;
beforeAll(async () => {
  lab = await simLab();
});
afterAll(async () => {
  await lab?.close();
});

/** `state` lines of `vagrant status --machine-readable`, by machine. */
async function states(): Promise<Record<string, string>> {
  const { stdout } = await lab.vagrant(['status', '--machine-readable']);
  const found: Record<string, string> = {};
  for (const line of stdout.split('\n')) {
    const [, target, type, data] = line.split(',');
    if (type === 'state') found[target!] = data!;
  }
  return found;
}

const daemon = async (name: string) =>
  JSON.parse(await readFile(path.join(lab.simState, `${name}.json`), 'utf8')) as {
    port: number;
    pid?: number;
  };
const kubeconfigPath = () => lab.def.machines.k8s!.files.kubeconfig!;

async function until(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('simulated vagrant', () => {
  it('prints the machine-readable status of machines never created', async () => {
    const { exitCode, stdout } = await lab.vagrant(['status', '--machine-readable']);
    expect(exitCode).toBe(0);
    const lines = stdout.split('\n');
    for (const name of MACHINES) {
      expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^\\d+,${name},metadata,provider,sim$`)));
      expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^\\d+,${name},provider-name,sim$`)));
      expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^\\d+,${name},state,not_created$`)));
      expect(lines).toContainEqual(
        expect.stringMatching(new RegExp(`^\\d+,${name},state-human-short,not created$`)),
      );
    }
    // Data never adds fields: its commas are escaped, its newlines written as \n.
    for (const line of lines.filter((l) => /^\d+,[^,]*,state-human-long,/.test(l))) {
      expect(line.split(',')).toHaveLength(4);
      expect(line).toContain('%!(VAGRANT_COMMA)');
    }
    const one = await lab.vagrant(['status', 'k8s', '--machine-readable']);
    expect(one.stdout).not.toContain('external-app');
    expect(one.stdout).toMatch(/^\d+,k8s,state,not_created$/m);
  });

  it('fails like vagrant for unknown machines, commands and options, and for ssh-config of a stopped machine', async () => {
    const unknown = await lab.vagrant(['status', 'nope']);
    expect(unknown).toMatchObject({ exitCode: 1 });
    expect(unknown.stderr).toMatch(
      /^The machine with the name 'nope' was not found configured for\nthis Vagrant environment\.$/,
    );
    const machineReadable = await lab.vagrant(['status', 'nope', '--machine-readable']);
    expect(machineReadable.stdout).toMatch(/^\d+,,error-exit,Vagrant::Errors::MachineNotFound,The machine/m);
    expect((await lab.vagrant(['frobnicate'])).exitCode).toBe(1);
    const badOption = await lab.vagrant(['up', '--bogus']);
    expect(badOption.exitCode).toBe(1);
    expect(badOption.stderr).toMatch(/^An invalid option was specified/);
    const notReady = await lab.vagrant(['ssh-config', 'k8s']);
    expect(notReady.exitCode).toBe(1);
    expect(notReady.stderr).toMatch(
      /^The provider for this Vagrant-managed machine is reporting that it\nis not yet ready for SSH/,
    );
  });

  it('boots the machines: their files, the kubeconfig, the proxy log, sshd and nginx', async () => {
    const { exitCode, stdout } = await lab.vagrant(['up', '--provider', 'sim']);
    expect(exitCode).toBe(0);
    for (const name of MACHINES) {
      expect(stdout).toContain(`Bringing machine '${name}' up with 'sim' provider...`);
      expect(stdout).toContain(`==> ${name}: Machine booted and ready!`);
    }
    expect(await states()).toEqual({
      'external-proxy': 'running',
      k8s: 'running',
      'external-app': 'running',
    });

    const kubeconfigText = await readFile(kubeconfigPath(), 'utf8');
    expect(kubeconfigText).not.toMatch(/PRIVATE KEY/);
    const kubeconfig = parse(kubeconfigText);
    expect(kubeconfig).toMatchObject({
      kind: 'Config',
      'current-context': 'Default',
      clusters: [{ name: 'k0s', cluster: { server: 'https://localhost:6443' } }],
      contexts: [{ name: 'Default', context: { cluster: 'k0s', user: 'admin' } }],
      users: [{ name: 'admin' }],
    });
    const ca = Buffer.from(
      kubeconfig.clusters[0].cluster['certificate-authority-data'] as string,
      'base64',
    ).toString();
    expect(ca).toMatch(/^-----BEGIN CERTIFICATE-----/);
    const key = Buffer.from(kubeconfig.users[0].user['client-key-data'] as string, 'base64').toString();
    expect(key).not.toMatch(/PRIVATE KEY/);

    const proxyLog = lab.def.machines['external-proxy']!.files.accessLog!;
    expect(await readFile(proxyLog, 'utf8')).toBe('');
    expect(alive((await daemon('sshd')).pid)).toBe(true);
    expect(alive((await daemon('external-app')).pid)).toBe(true);
  });

  it('leaves running machines alone on another up, and destroys nothing without -f', async () => {
    const { exitCode, stdout } = await lab.vagrant(['up', 'k8s']);
    expect(exitCode).toBe(0);
    expect(stdout).toContain('==> k8s: Machine already running.');
    expect(stdout).toContain('==> k8s: Machine already provisioned.');
    expect(stdout).not.toContain('Booting VM');
    // Without -f vagrant asks first, which needs a terminal.
    const noForce = await lab.vagrant(['destroy', 'k8s']);
    expect(noForce.exitCode).toBe(1);
    expect(noForce.stderr).toMatch(/requires\na TTY/);
    expect((await states()).k8s).toBe('running');
  });

  it('serves a temporary self-signed certificate until certs.generate has run: every client gets 400', async () => {
    const { port } = await daemon('external-app');
    const curl = await execa(
      'curl',
      ['-sk', '-o', '/dev/null', '-w', '%{http_code}', `https://127.0.0.1:${port}/`],
      {
        reject: false,
      },
    );
    expect(curl.stdout).toBe('400');
  });

  it('serves ssh for a run whose id is escaped in its folder name (a/b=c → a%2Fb%3Dc)', async () => {
    const escaped = await simLab(undefined, 'sim', 'matrix/tunnel=native');
    try {
      expect(escaped.labState).toContain('matrix%2Ftunnel%3Dnative');
      expect((await escaped.vagrant(['up', 'external-app'])).exitCode).toBe(0);
      const { stdout } = await escaped.vagrant(['ssh-config', 'external-app']);
      const session = await SshSession.open(parseSshConfig(stdout));
      try {
        expect((await session.run(['echo', 'up'])).stdout).toBe('up\n');
      } finally {
        session.close();
      }
    } finally {
      await escaped.close();
    }
  });

  it("prints ssh-config in vagrant's format, and ssh2 runs commands on the machine through it", async () => {
    const { exitCode, stdout } = await lab.vagrant(['ssh-config', 'k8s']);
    expect(exitCode).toBe(0);
    expect(stdout.split('\n')).toEqual([
      'Host k8s',
      '  HostName 127.0.0.1',
      `  User ${os.userInfo().username}`,
      `  Port ${(await daemon('sshd')).port}`,
      '  UserKnownHostsFile /dev/null',
      '  StrictHostKeyChecking no',
      '  PasswordAuthentication no',
      `  IdentityFile ${path.join(lab.simState, 'sshd', 'id_ed25519')}`,
      '  IdentitiesOnly yes',
      '  LogLevel FATAL',
      '',
    ]);
    const session = await SshSession.open(parseSshConfig(stdout));
    try {
      const result = await session.run(['cat', kubeconfigPath()]);
      expect(result).toEqual({ code: 0, stdout: await readFile(kubeconfigPath(), 'utf8'), stderr: '' });
      expect((await session.run(['sh', '-c', 'exit 3'])).code).toBe(3);
      // The machine's environment, not this host user's: its shell reads no ~/.bashrc of ours.
      expect((await session.run(['printenv', 'PATH'])).stdout.trim()).toBe(
        `${path.join(lab.simState, 'sshd', 'bin')}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
      );
    } finally {
      session.close();
    }
  });

  it('lets one of two concurrent ups boot a machine and fails the other as locked', async () => {
    expect((await lab.vagrant(['halt', 'external-proxy'])).exitCode).toBe(0);
    const results = await Promise.all([
      lab.vagrant(['up', 'external-proxy', '--provider', 'sim']),
      lab.vagrant(['up', 'external-proxy', '--provider', 'sim']),
    ]);
    expect(results.map((r) => r.exitCode).sort()).toEqual([0, 1]);
    const locked = results.find((r) => r.exitCode === 1)!;
    expect(locked.stderr).toMatch(
      /^An action 'up' was attempted on the machine 'external-proxy',\nbut another process is already executing an action on the machine\./,
    );
    expect((await states())['external-proxy']).toBe('running');
    const table = JSON.parse(await readFile(path.join(lab.simState, 'machines.json'), 'utf8'));
    expect(table['external-proxy']).toEqual({ state: 'running', provider: 'sim' });
  });

  it('drops open ssh sessions when the machines stop, and serves new ones after they boot again', async () => {
    const config = parseSshConfig((await lab.vagrant(['ssh-config', 'k8s'])).stdout);
    const session = await SshSession.open(config);
    try {
      const running = session.run(['sleep', '30']).then(
        (result) => result.code,
        (err: unknown) => err,
      );
      expect((await lab.vagrant(['halt'])).exitCode).toBe(0);
      const outcome = await running;
      expect(outcome instanceof Error ? outcome.message : outcome).not.toBe(0);
      await expect(session.run(['true'])).rejects.toThrow();
    } finally {
      session.close();
    }
    expect(await states()).toEqual({
      'external-proxy': 'poweroff',
      k8s: 'poweroff',
      'external-app': 'poweroff',
    });
    expect((await lab.vagrant(['ssh-config', 'k8s'])).exitCode).toBe(1);

    expect((await lab.vagrant(['up'])).exitCode).toBe(0);
    const fresh = await SshSession.open(parseSshConfig((await lab.vagrant(['ssh-config', 'k8s'])).stdout));
    try {
      expect((await fresh.run(['cat', kubeconfigPath()])).code).toBe(0);
    } finally {
      fresh.close();
    }
  });

  it('reports the machines aborted when their sshd dies, and up brings them back', async () => {
    const { pid } = await daemon('sshd');
    process.kill(pid!, 'SIGKILL');
    await until(() => !alive(pid));
    expect(await states()).toEqual({
      'external-proxy': 'aborted',
      k8s: 'aborted',
      'external-app': 'aborted',
    });
    expect((await lab.vagrant(['ssh-config', 'k8s'])).exitCode).toBe(1);

    const { stdout } = await lab.vagrant(['up']);
    expect(stdout).toContain('==> k8s: Machine booted and ready!');
    expect(await states()).toEqual({
      'external-proxy': 'running',
      k8s: 'running',
      'external-app': 'running',
    });
    const session = await SshSession.open(parseSshConfig((await lab.vagrant(['ssh-config', 'k8s'])).stdout));
    try {
      expect((await session.run(['true'])).code).toBe(0);
    } finally {
      session.close();
    }
  });

  it('halts and destroys machines and their services, and does both again without harm', async () => {
    const nginx = (await daemon('external-app')).pid;
    const sshd = (await daemon('sshd')).pid;
    const halted = await lab.vagrant(['halt', 'external-app']);
    expect(halted.stdout).toContain('==> external-app: Attempting graceful shutdown of VM...');
    expect(alive(nginx)).toBe(false);
    expect(alive(sshd)).toBe(true);
    expect((await lab.vagrant(['halt', 'external-app'])).exitCode).toBe(0);
    expect((await states())['external-app']).toBe('poweroff');

    expect((await lab.vagrant(['halt'])).exitCode).toBe(0);
    expect(alive(sshd)).toBe(false);

    const destroyed = await lab.vagrant(['destroy', '-f']);
    expect(destroyed.exitCode).toBe(0);
    expect(destroyed.stdout).toContain('==> k8s: Destroying VM and associated drives...');
    expect(existsSync(kubeconfigPath())).toBe(false);
    expect(await states()).toEqual({
      'external-proxy': 'not_created',
      k8s: 'not_created',
      'external-app': 'not_created',
    });
    const again = await lab.vagrant(['destroy', '-f', 'k8s']);
    expect(again).toMatchObject({ exitCode: 0, stdout: '==> k8s: VM not created. Moving on...' });
    expect((await lab.vagrant(['halt', 'k8s'])).exitCode).toBe(0);
  });

  it('lists and adds boxes, refusing to add the same box twice', async () => {
    expect((await lab.vagrant(['box', 'list', '--machine-readable'])).stdout).toMatch(
      /^\d+,,ui,warn,There are no installed boxes!/,
    );
    const add = ['box', 'add', 'bento/ubuntu-24.04', '--box-version', '202502.21.0', '--provider', 'sim'];
    const first = await lab.vagrant(add);
    expect(first.exitCode).toBe(0);
    expect(first.stdout).toContain("Successfully added box 'bento/ubuntu-24.04' (v202502.21.0) for 'sim'!");
    const listed = (await lab.vagrant(['box', 'list', '--machine-readable'])).stdout;
    expect(listed).toMatch(/^\d+,,box-name,bento\/ubuntu-24\.04$/m);
    expect(listed).toMatch(/^\d+,,box-provider,sim$/m);
    expect(listed).toMatch(/^\d+,,box-version,202502\.21\.0$/m);
    const second = await lab.vagrant(add);
    expect(second.exitCode).toBe(1);
    expect(second.stderr).toMatch(/^The box you're attempting to add already exists\./);
  });
});

describe("simulated vagrant's boot latency", () => {
  const LATENCY_MS = 6000;
  let slow: SimLab;
  beforeAll(async () => {
    slow = await simLab((def) => {
      def.sim.latency = { '^vagrant up': `${LATENCY_MS}ms`, '^istioctl version': `${LATENCY_MS}ms` };
    });
  });
  afterAll(async () => {
    await slow?.close();
  });

  it('is the whole boot, provisioning included: the services start while it runs, and up ends after it', async () => {
    const marker = slow.def.machines['external-proxy']!.files.provisioned!;
    const began = Date.now();
    let provisionedAfter: number | undefined;
    const up = slow.vagrant(['up', 'external-proxy']);
    let done = false;
    void up.finally(() => (done = true));
    while (!done) {
      if (provisionedAfter === undefined && existsSync(marker)) provisionedAfter = Date.now() - began;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(await up).toMatchObject({ exitCode: 0 });
    const took = Date.now() - began;
    expect(existsSync(marker)).toBe(true);
    provisionedAfter ??= took;
    expect(took).toBeGreaterThanOrEqual(LATENCY_MS);
    // Envoy started and the marker was written while the latency ran, not after it.
    expect(provisionedAfter).toBeLessThan(LATENCY_MS);
  }, 60_000);

  it("counts a command's latency from its start, its own start-up included", async () => {
    // As the stand-in host answers a call: the command began 5 s before its code runs.
    const call = (startedAt: number) =>
      runCall(
        istioctl,
        {
          argv: ['version', '--remote=false'],
          env: { ...process.env, ...slow.def.env },
          cwd: slow.def.stateDir,
          startedAt,
          stdin: () => '',
          signal: new AbortController().signal,
        },
        'Error: ',
      );
    const began = Date.now();
    const result = await call(began - (LATENCY_MS - 1000));
    const took = Date.now() - began;
    expect(result).toMatchObject({ code: 0, stdout: expect.stringContaining('1.28.3') });
    // What was left of the latency: about a second, not all of it again.
    expect(took).toBeGreaterThanOrEqual(900);
    expect(took).toBeLessThan(LATENCY_MS - 2000);
  }, 60_000);
});
