/**
 * The actions that read the VMs over ssh2 (kubeconfig.fetch, log.mark, log.expect), against the simulated
 * lab's real sshd: streaming instead of polling, failing checks, and a dropped connection that the retry
 * survives.
 */
import { appendFile, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { kubeconfigFetchAction } from '../activities/kubeconfig-fetch.js';
import { logExpectAction } from '../activities/log-expect.js';
import { logMarkAction } from '../activities/log-mark.js';
import { proxyCredentialAction, type ProxyCredentialOutput } from '../activities/proxy-credential.js';
import { vmUpAction } from '../activities/vm-up.js';
import { runningProxy } from '../sim/lib/proxy.js';
import { tunnelRequest } from '../sim/lib/tunnel-client.js';
import { queryProgress } from '../src/client.js';
import {
  basicAuthorization,
  htpasswdLine,
  proxyCredentialFile,
  type ProxyCredential,
} from '../src/lab/proxy-credential.js';
import { runLabDir } from '../src/state-layout.js';
import type { RunningWorker } from '../src/worker/create-worker.js';
import type { ScenarioResult } from '../workflows/types.js';
import { simLab, type SimLab } from './support/sim-lab.js';
import {
  connect,
  eventually,
  outcome,
  root,
  start,
  startWorker,
  writePlaybook,
  type TestLab,
} from './support/temporal.js';

describe('over ssh2 on the simulated lab (activities)', () => {
  let lab: SimLab;
  beforeAll(async () => {
    lab = await simLab();
  });
  afterAll(() => lab?.close());

  const failure = (promise: Promise<unknown>) =>
    promise.then(
      () => undefined,
      (e: unknown) => e as Error & { type?: string; nonRetryable?: boolean },
    );

  it('kubeconfig.fetch fails retryably before the VM runs, then stores a kubeconfig for the forwarded API', async () => {
    const early = await failure(lab.run(kubeconfigFetchAction, {}));
    expect(early).toMatchObject({ type: 'LabToolError', nonRetryable: false });

    await lab.run(vmUpAction, { machines: ['k8s', 'external-proxy'] });
    const { output } = await lab.run(kubeconfigFetchAction, {});
    const file = path.join(lab.labState, 'kubeconfig');
    expect(output).toMatchObject({
      path: file,
      server: 'https://127.0.0.1:6443',
      nodesReady: true,
      sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
    expect(JSON.stringify(output)).not.toMatch(/-data|PRIVATE KEY/);
    const text = await readFile(file, 'utf8');
    expect(text).toMatch(/server: https:\/\/127\.0\.0\.1:6443/);
    expect(text).not.toMatch(/localhost:6443/);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
  });

  it('log.expect streams lines written after the mark, and fails on extra, missing or forbidden lines', async () => {
    const log = lab.def.machines['external-proxy']!.files.accessLog!;
    await appendFile(log, 'before the mark CONNECT x\n');
    await lab.run(logMarkAction, { machine: 'external-proxy', file: 'accessLog', name: 'm1' });
    const target = { machine: 'external-proxy', file: 'accessLog', since: 'm1' };

    const began = Date.now();
    const waiting = lab.run(logExpectAction, {
      ...target,
      pattern: 'CONNECT a',
      count: 1,
      within: '20s',
      settle: '300ms',
    });
    setTimeout(() => void appendFile(log, 'line CONNECT a\n'), 500);
    const { output } = await waiting;
    expect(output).toMatchObject({ matches: ['line CONNECT a'] });
    expect(Date.now() - began).toBeLessThan(5000);

    expect(
      await lab.run(logExpectAction, { ...target, pattern: 'CONNECT x', absent: true, within: '500ms' }),
    ).toMatchObject({ output: { matches: [] } });
    const forbidden = await failure(
      lab.run(logExpectAction, { ...target, pattern: 'CONNECT a', absent: true, within: '2s' }),
    );
    expect(forbidden).toMatchObject({ type: 'ExpectationError' });
    expect(forbidden!.message).toMatch(
      /expected no line matching \/CONNECT a\/ .* since mark m1, found: line CONNECT a/,
    );

    // A negative check waits its whole window: a line that lands 2 s late (a buffered log flushing) is
    // still caught by the playbooks' `within: 3s`.
    await lab.run(logMarkAction, { machine: 'external-proxy', file: 'accessLog', name: 'late' });
    const late = failure(
      lab.run(logExpectAction, {
        ...target,
        since: 'late',
        pattern: 'CONNECT late',
        absent: true,
        within: '3s',
      }),
    );
    setTimeout(() => void appendFile(log, 'line CONNECT late\n'), 2000);
    expect((await late)!.message).toMatch(
      /expected no line matching \/CONNECT late\/ .* found: line CONNECT late/,
    );

    await appendFile(log, 'line CONNECT a\n');
    const extra = await failure(
      lab.run(logExpectAction, { ...target, pattern: 'CONNECT a', count: 1, within: '2s', settle: '300ms' }),
    );
    expect(extra!.message).toMatch(/expected 1 line\(s\) matching \/CONNECT a\/ .* found 2/);
    const missing = await failure(
      lab.run(logExpectAction, { ...target, pattern: 'CONNECT b', within: '1s' }),
    );
    expect(missing!.message).toMatch(
      /no line matching \/CONNECT b\/ .* within 1s; last lines: .*line CONNECT a/,
    );

    const noMark = await failure(lab.run(logExpectAction, { ...target, since: 'nope', pattern: 'x' }));
    expect(noMark).toMatchObject({ type: 'LabConfigError', nonRetryable: true });
  });

  it('ends a remote command that writes nothing when its stream is aborted, before or after it opened', async () => {
    const nap = `31.${process.pid}`;
    const gone = () =>
      eventually(async () => {
        // Nothing of it is left running on the machine (the sim's machines run their commands here).
        const left = await execa('pgrep', ['-f', `^sleep ${nap.replace('.', '\\.')}$`], { reject: false });
        return left.stdout === '' ? true : undefined;
      }, 5_000);
    const early = await lab.runtime.withSsh('external-proxy', (ssh) =>
      ssh.stream(['sleep', nap], () => {}, { signal: AbortSignal.abort() }),
    );
    expect(early).not.toBe(0);
    await gone();
    const later = new AbortController();
    const late = await lab.runtime.withSsh('external-proxy', (ssh) =>
      ssh.stream(['sleep', nap], () => {}, {
        signal: later.signal,
        onOpen: () => setTimeout(() => later.abort(), 300),
      }),
    );
    expect(late).not.toBe(0);
    await gone();
  });

  it("reads root-only files with the machine's `sudo -n`, as the lab says (nginx logs are 0750 on Debian)", async () => {
    const calls = path.join(lab.simState, 'sshd', 'sudo.log');
    const log = lab.def.machines['external-proxy']!.files.accessLog!;
    await lab.run(kubeconfigFetchAction, {});
    await lab.run(logMarkAction, { machine: 'external-proxy', file: 'accessLog', name: 'sudo' });
    await appendFile(log, 'CONNECT sudo\n');
    await lab.run(logExpectAction, {
      machine: 'external-proxy',
      file: 'accessLog',
      since: 'sudo',
      pattern: 'CONNECT sudo',
    });
    const lines = (await readFile(calls, 'utf8')).trim().split('\n');
    expect(lines).toEqual(
      expect.arrayContaining([
        `cat ${lab.def.machines.k8s!.files.kubeconfig}`,
        `stat -c %s ${log}`,
        expect.stringMatching(
          new RegExp(`^timeout \\d+ tail -c \\+\\d+ -F ${log.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}$`),
        ),
      ]),
    );
  });
});

describe('proxy.credential on the simulated lab', () => {
  let lab: SimLab;
  beforeAll(async () => {
    lab = await simLab();
    await lab.run(vmUpAction, { machines: ['external-proxy'] });
  });
  afterAll(() => lab?.close());

  /** A CONNECT through the proxy's credential listener (its real Envoy), with or without a credential. */
  const tunnel = async (authorization?: string) => {
    const running = runningProxy(lab.simState);
    if (!running) throw new Error('the sim proxy does not run (port 443 not bindable?)');
    return tunnelRequest({
      proxyPort: running.ports[3130]!,
      proxyTls: true,
      ...(authorization ? { proxyAuthorization: authorization } : {}),
      authority: 'www.google.com:443',
      host: 'www.google.com',
      insecure: false,
      publicCa: running.publicCa,
      timeoutMs: 5_000,
    });
  };

  it("lets the run's credential through the proxy, keeps the password in the run's folder, and takes it away", async () => {
    const routes = lab.def.machines['external-proxy']!.files.authRoutes!;
    const { output } = await lab.run(proxyCredentialAction, {});
    const file = (output as ProxyCredentialOutput).credentialFile!;
    expect(output).toEqual({
      machine: 'external-proxy',
      routes,
      state: 'present',
      changed: true,
      user: 'tunnel-lab',
      credentialFile: expect.stringMatching(
        new RegExp(`^${lab.stateRoot}/.*/secrets/proxy-credential\\.json$`),
      ),
    });
    expect(file).toBe(proxyCredentialFile(path.dirname(path.dirname(file))));
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const credential = JSON.parse(await readFile(file, 'utf8')) as ProxyCredential;
    // The proxy holds the password's hash, never the password; the step's output neither.
    const installed = await readFile(routes, 'utf8');
    expect(installed).toContain(htpasswdLine(credential));
    expect(installed).not.toContain(credential.password);
    expect(JSON.stringify(output)).not.toContain(credential.password);

    // Envoy re-reads the routes on its own: the credential gets through, no credential or another does not.
    await eventually(
      async () => (await tunnel(basicAuthorization(credential))).exitCode === 0 || undefined,
      10_000,
    );
    expect((await tunnel()).exitCode).not.toBe(0);
    expect((await tunnel(basicAuthorization({ ...credential, password: 'guess' }))).exitCode).not.toBe(0);

    // Again (a retry, a resumed run): the same credential, still let through.
    await lab.run(proxyCredentialAction, {});
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual(credential);
    expect((await tunnel(basicAuthorization(credential))).exitCode).toBe(0);

    expect((await lab.run(proxyCredentialAction, { state: 'absent' })).output).toMatchObject({
      changed: true,
    });
    expect(await readFile(routes, 'utf8')).not.toContain('tunnel-lab:');
    // Again, or in a run that never made a credential: nothing to take away, the machine is left alone.
    expect((await lab.run(proxyCredentialAction, { state: 'absent' })).output).toMatchObject({
      changed: false,
    });
    await expect(stat(file)).rejects.toThrow(/ENOENT/);
    await eventually(
      async () => (await tunnel(basicAuthorization(credential))).exitCode !== 0 || undefined,
      10_000,
    );
  }, 120_000);
});

describe('machines whose lab says sudo: false', () => {
  let lab: SimLab;
  beforeAll(async () => {
    lab = await simLab((yaml) => {
      for (const machine of Object.values(yaml.machines as Record<string, Record<string, unknown>>))
        machine.sudo = false;
    });
    await lab.run(vmUpAction, { machines: ['external-proxy'] });
  });
  afterAll(() => lab?.close());

  it('read their logs without sudo', async () => {
    await lab.run(logMarkAction, { machine: 'external-proxy', file: 'accessLog', name: 'plain' });
    await expect(readFile(path.join(lab.simState, 'sshd', 'sudo.log'), 'utf8')).rejects.toThrow(/ENOENT/);
  });
});

describe('a dropped ssh connection during log.expect (workflow)', () => {
  let temporal: TestLab;
  let running: RunningWorker;
  let done: Promise<void>;
  beforeAll(async () => {
    temporal = await connect('ssh-drop');
    running = await startWorker(temporal);
    done = running.run();
  });
  afterAll(async () => {
    running.shutdown();
    await done;
    await running.close();
    await temporal.close();
  });

  it('fails the attempt when sshd dies, and the retry on the restarted machine passes', async () => {
    const file = await writePlaybook(
      'ssh-drop',
      [
        'name: ssh-drop',
        'lab: sim',
        'steps:',
        '  - { id: vms, uses: vm.up, with: { machines: [external-proxy] } }',
        '  - { id: mark, uses: log.mark, with: { machine: external-proxy, file: accessLog, name: m } }',
        '  - id: wait-line',
        '    uses: log.expect',
        '    retry: { attempts: 3, interval: 2s }',
        '    with: { machine: external-proxy, file: accessLog, since: m, pattern: tunnel-up, within: 20s }',
        'finally:',
        '  - { id: destroy, uses: vm.destroy }',
      ].join('\n'),
    );
    const handle = await start(temporal, { playbook: file });
    await eventually(async () =>
      (await queryProgress(handle).catch(() => undefined))?.steps[2]?.status === 'running' ? true : undefined,
    );

    const labState = runLabDir(temporal.stateRoot, handle.workflowId);
    const simState = path.join(labState, 'sim');
    const sshd = JSON.parse(await readFile(path.join(simState, 'sshd.json'), 'utf8')) as { pid: number };
    // log.expect is watching the log: its `tail -F` runs on the machine, in a session of the listener.
    const log = path.join(labState, 'vms', 'external-proxy', 'var', 'log', 'envoy', 'access.log');
    await eventually(async () => {
      const tail = await execa('pgrep', ['-f', `tail -c \\+[0-9]+ -F ${log}`], { reject: false });
      return tail.stdout.trim() ? true : undefined;
    });
    const sessions = await execa('pgrep', ['-P', String(sshd.pid)], { reject: false });
    // The listener and its session processes die together, as when the machine goes away.
    for (const pid of [sshd.pid, ...sessions.stdout.split('\n').filter(Boolean).map(Number)])
      process.kill(pid, 'SIGKILL');
    // The machine comes back (as after a host hiccup) while the step waits to retry.
    await execa(path.join(root, 'sim', 'bin', 'vagrant'), ['up', 'external-proxy'], {
      cwd: labState,
      env: {
        TUNNEL_LAB_SIM_STATE: simState,
        TUNNEL_LAB_CONFIG: path.join(root, 'labs', 'sim.yaml'),
        TUNNEL_LAB_STATE_DIR: labState,
      },
    });
    await appendFile(log, 'tunnel-up\n');

    const result: ScenarioResult = await outcome(handle);
    expect(result.status).toBe('passed');
    expect(result.steps.find((s) => s.id === 'wait-line')).toMatchObject({
      status: 'passed',
      attempts: 2,
      output: { matches: ['tunnel-up'] },
    });
  }, 60_000);
});
