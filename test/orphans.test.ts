/**
 * The orphan reaper: what a dead worker left running is stopped by the next one, found by pid and start
 * time, also when it was started through a wrapper script whose command line changes after the spawn.
 */
import { chmod, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { runCommand } from '../src/run-command.js';
import { runDir } from '../src/state-layout.js';
import { startTimeOf } from '../src/proc.js';
import { reapOrphans } from '../src/worker/orphans.js';
import { alive } from './support/processes.js';
import { eventually } from './support/temporal.js';

/** A wrapper like sim/bin/kubectl: bash that starts a helper, then becomes node (`exec`). */
async function wrapper(dir: string): Promise<string> {
  const file = path.join(dir, 'wrapped-tool');
  await writeFile(
    file,
    [
      '#!/usr/bin/env bash',
      `sleep 60 & echo $! > ${path.join(dir, 'helper.pid')}`,
      'exec node -e "setTimeout(() => {}, 60000)"',
      '',
    ].join('\n'),
  );
  await chmod(file, 0o755);
  return file;
}

/** Rewrites this worker's records as a dead worker's (a pid that has exited). */
async function orphan(stateDir: string): Promise<void> {
  const dead = execa('true');
  await dead;
  const dir = path.join(stateDir, 'children');
  for (const entry of await readdir(dir)) {
    const file = path.join(dir, entry);
    const record = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    await writeFile(file, JSON.stringify({ ...record, workerPid: dead.pid, workerStarted: '1' }));
  }
}

it("stops a dead worker's wrapper-script child and what it started, once its command line has changed", async () => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'orphans-'));
  const stateDir = runDir(root, 'run-1');
  const tool = await wrapper(root);
  const abort = new AbortController();
  const running = runCommand({ signal: abort.signal, stateDir }, tool, [], { notFound: 'no tool' });
  const [record] = await eventually(async () => {
    const entries = await readdir(path.join(stateDir, 'children')).catch(() => []);
    return entries.length > 0 ? entries : undefined;
  });
  const pid = Number(record!.replace(/\.json$/, ''));
  // The wrapper has become node: the command line recorded at spawn (bash) would no longer match.
  await eventually(async () =>
    (await readFile(`/proc/${pid}/cmdline`, 'utf8')).startsWith('node') ? true : undefined,
  );
  const helper = Number(
    await eventually(() => readFile(path.join(root, 'helper.pid'), 'utf8').catch(() => undefined)),
  );

  // While its worker (this process) lives, the child is left alone.
  expect(reapOrphans(root)).toEqual([]);
  expect(alive(pid)).toBe(true);

  await orphan(stateDir);
  expect(reapOrphans(root)).toEqual([pid]);
  await eventually(() => Promise.resolve(alive(pid) || alive(helper) ? undefined : true));
  await running.catch(() => undefined);
  abort.abort();
  // The record is gone with it.
  expect(await readdir(path.join(stateDir, 'children'))).toEqual([]);
});

it('leaves alone a process that only has the pid of a recorded child', async () => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'orphans-'));
  const stateDir = runDir(root, 'run-2');
  const other = execa('sleep', ['30']);
  const dir = path.join(stateDir, 'children');
  await execa('mkdir', ['-p', dir]);
  // A record of an earlier process that had this pid: another start time.
  await writeFile(
    path.join(dir, `${other.pid}.json`),
    JSON.stringify({ pid: other.pid, started: '1', workerPid: 999_999_999, workerStarted: '1' }),
  );
  expect(startTimeOf(other.pid!)).not.toBe('1');
  expect(reapOrphans(root)).toEqual([]);
  expect(alive(other.pid)).toBe(true);
  other.kill();
  await other.catch(() => undefined);
});
