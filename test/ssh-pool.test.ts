/**
 * The worker's shared ssh connections, against the simulated lab's real sshd: one `vagrant ssh-config`
 * and one connection for many commands, a new connection after the machine's sshd died and came back on
 * another port, and nothing left open once forgotten, idle or closed.
 */
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { execa } from 'execa';
import { LabRuntime } from '../src/lab/runtime.js';
import { SshPool } from '../src/lab/ssh-pool.js';
import { runDir } from '../src/state-layout.js';
import { simLab, vagrantCalls, type SimLab } from './support/sim-lab.js';
import { eventually } from './support/temporal.js';

describe('the shared ssh connections of a worker', () => {
  let lab: SimLab;
  let pool: SshPool;
  let runtime: LabRuntime;
  let fetches = 0;
  beforeAll(async () => {
    lab = await simLab();
    expect((await lab.vagrant(['up', 'external-proxy', 'external-app'])).exitCode).toBe(0);
  });
  beforeEach(() => {
    pool = new SshPool();
    runtime = new LabRuntime(
      lab.def,
      { stateDir: runDir(lab.stateRoot, 'test'), signal: new AbortController().signal },
      pool,
    );
    fetches = 0;
    const sshTarget = runtime.sshTarget.bind(runtime);
    runtime.sshTarget = (machine) => {
      fetches++;
      return sshTarget(machine);
    };
  });
  afterEach(() => pool.close());
  afterAll(() => lab?.close());

  const hostname = () => runtime.withSsh('external-proxy', (ssh) => ssh.run(['echo', 'up']));
  const sshd = async () =>
    JSON.parse(await readFile(path.join(lab.simState, 'sshd.json'), 'utf8')) as { pid: number; port: number };
  /** The connections sshd serves: one child process of the listener each. */
  const served = async () => {
    const children = await execa('pgrep', ['-P', String((await sshd()).pid)], { reject: false });
    return children.stdout.split('\n').filter(Boolean).length;
  };

  /** The ssh-config calls vagrant has served so far. */
  const sshConfigCalls = async () =>
    (await vagrantCalls(lab)).map((call) => call.argv).filter((argv) => argv[0] === 'ssh-config');

  it('asks vagrant once for the machines reached at once, and each alone when one of them is down', async () => {
    const before = (await sshConfigCalls()).length;
    const [proxy, app] = await Promise.all([
      runtime.sshTarget('external-proxy'),
      runtime.sshTarget('external-app'),
    ]);
    expect(proxy).toEqual(app);
    expect(proxy.port).toBe((await sshd()).port);
    expect((await sshConfigCalls()).slice(before)).toEqual([
      ['ssh-config', 'external-proxy', 'external-app'],
    ]);

    // k8s never booted: vagrant refuses the whole call, and then says why for that machine alone.
    const [up, down] = await Promise.allSettled([
      runtime.sshTarget('external-proxy'),
      runtime.sshTarget('k8s'),
    ]);
    expect(up).toEqual({ status: 'fulfilled', value: proxy });
    expect(down).toMatchObject({
      status: 'rejected',
      reason: { message: expect.stringMatching(/ssh-config k8s/) },
    });
    const [batch, ...each] = (await sshConfigCalls()).slice(before + 1);
    expect(batch).toEqual(['ssh-config', 'external-proxy', 'k8s']);
    // The two single calls run at once, in either order.
    expect(each.map((argv) => argv.join(' ')).sort()).toEqual([
      'ssh-config external-proxy',
      'ssh-config k8s',
    ]);
  });

  it('runs successive and concurrent commands over one connection, asking vagrant once', async () => {
    for (let i = 0; i < 3; i++) expect(await hostname()).toMatchObject({ code: 0, stdout: 'up\n' });
    const together = await Promise.all([hostname(), hostname(), hostname()]);
    expect(together.map((r) => r.stdout)).toEqual(['up\n', 'up\n', 'up\n']);
    expect(fetches).toBe(1);
    expect(pool.size).toBe(1);
    expect(await served()).toBe(1);
  });

  it('connects again after the machine came back with another sshd, and asks vagrant again', async () => {
    await hostname();
    const before = await sshd();
    const children = await execa('pgrep', ['-P', String(before.pid)], { reject: false });
    for (const pid of [before.pid, ...children.stdout.split('\n').filter(Boolean).map(Number)])
      process.kill(pid, 'SIGKILL');
    await eventually(() => Promise.resolve(pool.size === 0 ? true : undefined));
    // Its old port taken meanwhile, the machine's sshd comes back on another one, as a rebooted VM's
    // forwarded port may.
    const squatter = net.createServer();
    await new Promise<void>((resolve) => squatter.listen(before.port, '127.0.0.1', resolve));
    try {
      expect((await lab.vagrant(['up', 'external-proxy'])).exitCode).toBe(0);
    } finally {
      await new Promise((resolve) => squatter.close(resolve));
    }
    expect((await sshd()).port).not.toBe(before.port);

    expect(await hostname()).toMatchObject({ code: 0, stdout: 'up\n' });
    expect(fetches).toBe(2);
    expect(pool.size).toBe(1);
  });

  it('closes what it forgets, what idles and everything at close', async () => {
    await hostname();
    runtime.forgetSsh(['external-proxy']);
    await eventually(async () => (pool.size === 0 && (await served()) === 0 ? true : undefined));
    await hostname();
    expect(fetches).toBe(2);

    const quick = new SshPool(100);
    const idle = new LabRuntime(lab.def, { stateDir: runDir(lab.stateRoot, 'test') }, quick);
    await idle.withSsh('external-proxy', (ssh) => ssh.run(['true']));
    expect(quick.size).toBe(1);
    await eventually(() => Promise.resolve(quick.size === 0 ? true : undefined));

    pool.close();
    expect(pool.size).toBe(0);
    await expect(hostname()).rejects.toThrow(/shutting down/);
    await eventually(async () => ((await served()) === 0 ? true : undefined));
  });
});
