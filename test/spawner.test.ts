import { readFileSync } from 'node:fs';
import { mkdtemp, readdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CommandNotFoundError } from '../src/errors.js';
import { runCommand, useSpawner, type CommandOptions } from '../src/run-command.js';
import { Spawner, type SpawnOptions } from '../src/spawner/spawner.js';
import { startTimeOf } from '../src/proc.js';
import { eventually } from './support/temporal.js';

const options: CommandOptions = { notFound: 'not installed' };
/** A command with nothing but PATH in its environment, run in /. */
const command = (file: string, args: string[], more: Partial<SpawnOptions> = {}): SpawnOptions => ({
  file,
  args,
  env: { PATH: process.env.PATH ?? '' },
  cwd: '/',
  input: '',
  ...more,
});
const alive = (pid: number) => startTimeOf(pid) !== undefined;

describe('spawner', () => {
  let spawner: Spawner;
  beforeEach(() => {
    spawner = new Spawner();
  });
  afterEach(() => spawner.close());

  it('runs a command as execa does: argv, env, cwd, stdin, exit code, both outputs', async () => {
    const spawned: number[] = [];
    const result = await spawner.run({
      file: 'node',
      args: [
        '-e',
        'process.stdin.pipe(process.stdout); console.error(process.env.X, process.cwd()); process.exitCode = 3',
      ],
      env: { PATH: process.env.PATH ?? '', X: 'from-env' },
      cwd: os.tmpdir(),
      input: 'from-stdin\n',
      onSpawned: (pid) => spawned.push(pid),
    });
    expect(result).toMatchObject({
      exitCode: 3,
      stdout: 'from-stdin',
      stderr: `from-env ${os.tmpdir()}`,
      timedOut: false,
      isCanceled: false,
      notFound: false,
    });
    expect(spawned).toHaveLength(1);
    expect(spawned[0]).not.toBe(process.pid);
  });

  it('gives runCommand the same result as running the command itself', async () => {
    const args = ['-c', 'echo "$1"; echo err >&2; exit 4', 'sh', '$(whoami) && ls'];
    const direct = await runCommand({}, 'sh', args, { ...options, env: { Y: '1' } });
    const back = useSpawner(spawner);
    try {
      const through = await runCommand({}, 'sh', args, { ...options, env: { Y: '1' } });
      expect(through).toEqual(direct);
      expect(through).toEqual({ exitCode: 4, stdout: '$(whoami) && ls', stderr: 'err', timedOut: false });
      await expect(runCommand({}, 'no-such-program-xyz', [], options)).rejects.toBeInstanceOf(
        CommandNotFoundError,
      );
    } finally {
      back();
    }
  });

  it('stops a command on its timeout and on its cancellation, and forgets the child it recorded', async () => {
    const timed = await spawner.run(command('sleep', ['30'], { timeoutMs: 200 }));
    expect(timed).toMatchObject({ timedOut: true });

    const stateDir = await mkdtemp(path.join(os.tmpdir(), 'spawner-'));
    const back = useSpawner(spawner);
    try {
      const controller = new AbortController();
      const running = runCommand({ signal: controller.signal, stateDir }, 'sleep', ['30'], options);
      // While it runs, the child is on record for a later worker (src/worker/orphans.ts).
      const children = path.join(stateDir, 'children');
      const records = await eventually(async () => {
        const found = await readdir(children).catch(() => []);
        return found.length > 0 ? found : undefined;
      });
      expect(records).toHaveLength(1);
      const pid = Number(records[0]!.replace('.json', ''));
      expect(alive(pid)).toBe(true);
      const began = Date.now();
      controller.abort(new Error('stop now'));
      await expect(running).rejects.toThrow('stop now');
      expect(Date.now() - began).toBeLessThan(10_000);
      expect(await readdir(children)).toEqual([]);
    } finally {
      back();
    }
  });

  it('leads a process group of its own: a Ctrl-C at the terminal reaches the CLI, not the spawner', async () => {
    await spawner.run(command('true', []));
    const own = (spawner as unknown as { child: { pid: number } }).child.pid;
    const group = (pid: number) => {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
    };
    expect(group(own)).toBe(own);
    expect(group(own)).not.toBe(group(process.pid));
  });

  it('fails the commands it ran when its process dies, and starts again for the next', async () => {
    const pids: number[] = [];
    const running = spawner.run(command('sleep', ['30'], { onSpawned: (pid) => pids.push(pid) }));
    // The spawner is killed only once its command runs: a loaded machine can take longer than
    // any fixed wait to start the spawner's Node.
    await eventually(() => Promise.resolve(pids[0]));
    const own = (spawner as unknown as { child: { pid: number } }).child.pid;
    process.kill(own, 'SIGKILL');
    await expect(running).rejects.toThrow(/the spawner process \(pid \d+\) ended \(SIGKILL\)/);
    // Its command leads its own process group and outlives it, as a dead worker's do (orphans.ts stops them).
    expect(alive(pids[0]!)).toBe(true);
    process.kill(-pids[0]!, 'SIGKILL');
    const next = await spawner.run(command('echo', ['again']));
    expect(next).toMatchObject({ exitCode: 0, stdout: 'again' });
  });

  it('ends when its parent closes it', async () => {
    await spawner.run(command('true', []));
    const own = (spawner as unknown as { child: { pid: number } }).child.pid;
    spawner.close();
    for (let i = 0; i < 50 && alive(own); i++) await new Promise((r) => setTimeout(r, 50));
    expect(alive(own)).toBe(false);
    await expect(spawner.run(command('true', []))).rejects.toThrow('closed');
  });
});
