/**
 * The simulated lab's stand-in host (sim/standin-host.ts): `vagrant up` starts it and the last machine's
 * halt stops it; it answers kubectl and istioctl calls, and vagrant's that only read, with the caller's
 * folder and environment; and every
 * call it cannot or should not answer (one that reads stdin, a host that died, a build that changed
 * under it) runs as a process of its own instead, with the same result. sim-kubectl.test.ts runs the
 * stand-ins' whole command-line checks both ways.
 */
import { existsSync, readFileSync, statSync, utimesSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { execa } from 'execa';
import { stringify } from 'yaml';
import { simProgramPath } from '../sim/lib/bundles.js';
import { isAlive } from '../sim/lib/procs.js';
import { parseHostRequest, readStandinHostAddress, standinHostFiles } from '../sim/lib/standin-host.js';
import type { ToolResult } from '../src/lab/runtime.js';
import { writeKubeconfig } from './support/sim-cluster.js';
import { simLab, type SimLab } from './support/sim-lab.js';
import { root } from './support/temporal.js';

let lab: SimLab;
let kubeconfig: string;

beforeAll(async () => {
  lab = await simLab((def) => {
    def.sim.latency = {};
  });
  expect((await lab.vagrant(['up', 'k8s'])).exitCode).toBe(0);
  kubeconfig = await writeKubeconfig(lab);
});
afterAll(async () => {
  await lab?.close();
});

const kubectl = (args: string[], options: { input?: string; cwd?: string } = {}): Promise<ToolResult> =>
  lab.runtime.tool('kubectl', ['--kubeconfig', kubeconfig, ...args], { check: false, ...options });

/** The calls the host logged as answered so far. */
function answered(): string[] {
  const log = standinHostFiles(lab.simState).log;
  if (!existsSync(log)) return [];
  return readFileSync(log, 'utf8')
    .split('\n')
    .filter((line) => / (kubectl|istioctl|vagrant) \S+ → \d+ \(/.test(line));
}

async function waitFor(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('the stand-in host', () => {
  it('starts with the lab, answers calls with the caller’s folder, and keeps secrets out of its log', async () => {
    const address = readStandinHostAddress(lab.simState)!;
    expect(isAlive(address.pid)).toBe(true);
    expect(statSync(standinHostFiles(lab.simState).address).mode & 0o777).toBe(0o600);
    const before = answered().length;
    const folder = path.join(lab.stateRoot, 'manifests');
    await mkdir(folder, { recursive: true });
    await writeFile(
      path.join(folder, 'cm.yaml'),
      stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'relative' }, data: { a: 'b' } }),
    );
    expect(await kubectl(['apply', '-f', 'cm.yaml'], { cwd: folder })).toMatchObject({
      exitCode: 0,
      stdout: 'configmap/relative created',
    });
    expect(
      await kubectl(['create', 'secret', 'generic', 'hush', '--from-literal=password=s3cr3t-value']),
    ).toMatchObject({ exitCode: 0, stdout: 'secret/hush created' });
    // Output with several lines and bytes beyond ASCII arrives whole; so does stderr with an exit code.
    const got = await kubectl(['get', 'configmap', 'relative', '-o', 'jsonpath={.data.a}✔']);
    expect(got).toMatchObject({ exitCode: 0, stdout: 'b✔' });
    expect(await kubectl(['get', 'configmap', 'nope'])).toMatchObject({
      exitCode: 1,
      stderr: 'Error from server (NotFound): configmaps "nope" not found',
    });
    const lines = answered().slice(before);
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatch(/ kubectl apply → 0 \(/);
    expect(lines[3]).toMatch(/ kubectl get → 1 \(/);
    expect(readFileSync(standinHostFiles(lab.simState).log, 'utf8')).not.toContain('s3cr3t');
  });

  it('answers the vagrant commands that only read, and leaves the others to processes', async () => {
    const before = answered().length;
    expect((await lab.vagrant(['status', '--machine-readable'])).stdout).toMatch(/,k8s,state,running\n/);
    expect((await lab.vagrant(['ssh-config', 'k8s'])).stdout).toMatch(
      /^Host k8s\n {2}HostName 127\.0\.0\.1\n/,
    );
    expect((await lab.vagrant(['ssh-config', 'external-app'])).exitCode).not.toBe(0);
    expect((await lab.vagrant(['validate'])).exitCode).toBe(0);
    expect(
      answered()
        .slice(before)
        .map((line) => / vagrant (\S+ → \d+)/.exec(line)?.[1]),
    ).toEqual(['status → 0', 'ssh-config → 0', 'ssh-config → 1']);
  });

  it('leaves a call that reads stdin to a process of its own', async () => {
    const before = answered().length;
    const manifest = stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'piped' } });
    expect(await kubectl(['apply', '-f', '-'], { input: manifest })).toMatchObject({
      exitCode: 0,
      stdout: 'configmap/piped created',
    });
    expect(await kubectl(['apply', '-f-'], { input: manifest })).toMatchObject({
      exitCode: 0,
      stdout: 'configmap/piped unchanged',
    });
    expect(answered().length).toBe(before);
  });

  it('ends a call whose caller went away', async () => {
    const waiting = execa(
      path.join(root, 'sim', 'bin', 'kubectl'),
      ['--kubeconfig', kubeconfig, 'wait', '--for=condition=Bogus', 'node', '--all', '--timeout=60s'],
      { env: lab.def.env, reject: false },
    );
    await new Promise((r) => setTimeout(r, 1000));
    waiting.kill('SIGKILL');
    await waiting;
    // The wait would run 60 s; with its caller gone it ends at its next poll.
    await waitFor(
      () => answered().some((line) => / kubectl wait → 130 \(/.test(line)),
      'the wait to end',
      5000,
    );
  });

  it('refuses a caller without the token, and a malformed call', async () => {
    const { port, pid } = readStandinHostAddress(lab.simState)!;
    const send = (data: Buffer) =>
      new Promise<string>((resolve, reject) => {
        const socket = net.connect(port, '127.0.0.1', () => socket.end(data));
        let reply = '';
        socket.on('data', (chunk) => (reply += chunk.toString()));
        socket.on('close', () => resolve(reply));
        socket.on('error', reject);
      });
    const wrong = 'x'.repeat(readStandinHostAddress(lab.simState)!.token.length);
    expect(await send(Buffer.from(`${wrong}\0kubectl\0/\x001\0version\0\0`))).toBe('');
    expect(await send(Buffer.from('token\0kubectl\0/\0many\0'))).toBe('');
    expect(readFileSync(standinHostFiles(lab.simState).log, 'utf8')).toMatch(/refused a call: wrong token/);
    expect(readFileSync(standinHostFiles(lab.simState).log, 'utf8')).toMatch(/refused a malformed call/);
    expect(isAlive(pid)).toBe(true);
  });

  it('sends callers back to a process of their own once the build changed, and stops', async () => {
    const { pid } = readStandinHostAddress(lab.simState)!;
    const bundle = simProgramPath(root, 'standin-host');
    const { atime, mtime } = statSync(bundle);
    utimesSync(bundle, atime, new Date(mtime.getTime() + 1000));
    try {
      const before = answered().length;
      expect(await kubectl(['get', 'configmap', 'relative', '-o', 'name'])).toMatchObject({
        exitCode: 0,
        stdout: 'configmap/relative',
      });
      expect(answered().length).toBe(before);
      await waitFor(() => !isAlive(pid), 'the host to stop');
    } finally {
      utimesSync(bundle, atime, mtime);
    }
  });

  it('is not needed: with no host the calls run as processes, and the next boot starts one', async () => {
    expect(await kubectl(['get', 'configmap', 'piped', '-o', 'name'])).toMatchObject({
      exitCode: 0,
      stdout: 'configmap/piped',
    });
    expect((await lab.vagrant(['halt', 'k8s'])).exitCode).toBe(0);
    expect(readStandinHostAddress(lab.simState)).toBeUndefined();
    expect((await lab.vagrant(['up', 'k8s'])).exitCode).toBe(0);
    const { pid } = readStandinHostAddress(lab.simState)!;
    const before = answered().length;
    expect(await kubectl(['get', 'configmap', 'piped', '-o', 'name'])).toMatchObject({ exitCode: 0 });
    expect(answered().length).toBe(before + 1);
    // A host killed outright: the address file stays behind, and the calls still get their answer.
    process.kill(pid, 'SIGKILL');
    await waitFor(() => !isAlive(pid), 'the host to die');
    expect(await kubectl(['get', 'configmap', 'piped', '-o', 'name'])).toMatchObject({
      exitCode: 0,
      stdout: 'configmap/piped',
    });
    expect(answered().length).toBe(before + 1);
    // The next boot starts a host again, and the lab's halt stops it with the machines.
    expect((await lab.vagrant(['halt', 'k8s'])).exitCode).toBe(0);
    expect((await lab.vagrant(['up', 'k8s'])).exitCode).toBe(0);
    const restarted = readStandinHostAddress(lab.simState)!.pid;
    expect(restarted).not.toBe(pid);
    expect((await lab.vagrant(['halt', 'k8s'])).exitCode).toBe(0);
    expect(isAlive(restarted)).toBe(false);
  });
});

describe('the stand-in host protocol', () => {
  const fields = (...values: string[]) => Buffer.from(values.map((v) => `${v}\0`).join(''));

  it('waits for the whole call, and reads arguments and environment', () => {
    const whole = fields('t', 'kubectl', '/w', '2', 'get', 'a=b', 'HOME=/root', 'X=1=2', '');
    expect(parseHostRequest(whole)).toEqual({
      token: 't',
      tool: 'kubectl',
      cwd: '/w',
      argv: ['get', 'a=b'],
      env: { HOME: '/root', X: '1=2' },
    });
    expect(parseHostRequest(whole.subarray(0, whole.length - 1))).toBeUndefined();
    // An empty argument is an argument, not the end of the environment.
    expect(parseHostRequest(fields('t', 'kubectl', '/w', '1', '', ''))).toMatchObject({
      argv: [''],
      env: {},
    });
    expect(parseHostRequest(fields('t', 'kubectl', '/w', '1', ''))).toBeUndefined();
    expect(parseHostRequest(fields('t', 'kubectl', '/w', '-1', ''))).toBeNull();
  });
});
