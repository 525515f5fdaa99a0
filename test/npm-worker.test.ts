/** `npm run worker` stops with npm: killing npm's process must not leave the worker polling. */
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { eventually, root, serverAddress, uniqueQueue } from './support/temporal.js';

/** The pids of processes whose environment holds `marker` (here: a unique task queue). */
async function processesWith(marker: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const environ = await readFile(`/proc/${entry}/environ`, 'latin1').catch(() => '');
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'latin1').catch(() => '');
    if (environ.split('\0').includes(marker) && cmdline.includes('worker/main.js')) pids.push(Number(entry));
  }
  return pids;
}

it('stops the worker when the npm that started it is killed', async () => {
  const queue = uniqueQueue('npm-worker');
  const npm = execa('npm', ['run', 'worker'], {
    cwd: root,
    env: {
      TEMPORAL_ADDRESS: serverAddress(),
      TEMPORAL_TASK_QUEUE: queue,
      TUNNEL_LAB_STATE: await mkdtemp(path.join(os.tmpdir(), 'npm-worker-')),
    },
    reject: false,
  });
  let output = '';
  npm.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  await eventually(
    () => Promise.resolve(output.includes('worker serving task queue') ? true : undefined),
    60_000,
  );
  const [worker] = await processesWith(`TEMPORAL_TASK_QUEUE=${queue}`);
  expect(worker).toBeDefined();

  npm.kill('SIGKILL');
  // The worker (npm → sh → node) holds npm's output pipes until it stops.
  await eventually(
    async () => ((await processesWith(`TEMPORAL_TASK_QUEUE=${queue}`)).length === 0 ? true : undefined),
    15_000,
  );
  await npm;
}, 90_000);
