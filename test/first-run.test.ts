/**
 * The first run on a fresh checkout: `./tunnel-lab` installs and builds what it needs with one progress line
 * per stage and nothing of npm's chatter, then the command's own output; the second run says nothing more.
 */
import { cp, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { root } from './support/temporal.js';

let checkout: string;

beforeAll(async () => {
  checkout = await mkdtemp(path.join(os.tmpdir(), 'first-run-'));
  // The project's files as a clone has them (tracked, and new ones not ignored): no node_modules, no dist.
  const { stdout } = await execa('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
    cwd: root,
  });
  for (const file of stdout.split('\0').filter(Boolean)) {
    await cp(path.join(root, file), path.join(checkout, file), { recursive: true }).catch((err: unknown) => {
      // A file deleted in the working tree but still in the index is not part of the checkout.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    });
  }
});
afterAll(() => rm(checkout, { recursive: true, force: true }));

it('says what it installs and builds, one line each, and keeps npm quiet', async () => {
  // Offline first: the packages are in npm's cache already (the suite itself was installed from it).
  const env = { ...process.env, npm_config_prefer_offline: 'true' };
  const first = await execa(path.join(checkout, 'tunnel-lab'), ['--version'], { env, reject: false });
  expect(first.exitCode).toBe(0);
  expect(first.stdout).toMatch(/^tunnel-lab \d+\.\d+\.\d+$/);
  expect(first.stderr.split('\n')).toEqual([
    'installing npm dependencies (npm ci; about a minute the first time)...',
    'building (TypeScript, then the workflow bundle)...',
  ]);
  const second = await execa(path.join(checkout, 'tunnel-lab'), ['--version'], { env });
  expect(second.stdout).toBe(first.stdout);
  expect(second.stderr).toBe('');
}, 300_000);
