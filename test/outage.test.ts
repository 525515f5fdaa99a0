/**
 * A Temporal outage in the middle of a run: the server stops for 30 s while a step runs. The CLI says it
 * waits, says when the server is back, and exits 0 with the run passed; the server keeps the run (SQLite).
 */
import { mkdtemp, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { findTemporalCli } from '../src/temporal/cli-binary.js';
import { freePort, startDevServer, type DevServer } from '../src/temporal/dev-server.js';
import { cli, workerProcess } from './support/processes.js';
import { eventually, root, uniqueQueue, writePlaybook } from './support/temporal.js';

// Longer than the Temporal client's own retries of an unavailable server (10 attempts, 16-24 s with jitter),
// which a shorter outage can hide from the CLI altogether.
const OUTAGE_MS = 30_000;
const mark = path.join(root, 'test', 'fixtures', 'mark.mjs');

it('rides out a 30 s server outage mid-run: the run passes and the CLI exits 0', async () => {
  const temporal = await findTemporalCli(root);
  if (!temporal) throw new Error('the temporal CLI is not built (.ci/run builds it)');
  const stateRoot = await mkdtemp(path.join(os.tmpdir(), 'outage-'));
  const options = {
    cli: temporal,
    port: await freePort(),
    dbFile: path.join(stateRoot, 'temporal.db'),
    uiPort: false as const,
  };
  let server: DevServer = await startDevServer(options);
  const taskQueue = uniqueQueue('outage');
  const worker = workerProcess(taskQueue, stateRoot, 'outage-worker', server.address);
  const marks = path.join(stateRoot, 'marks');
  const file = await writePlaybook(
    'outage',
    [
      'name: outage',
      'steps:',
      `  - { id: first, uses: exec, with: { command: [node, ${mark}, ${marks}, first] } }`,
      // Retried if its completion is lost in the outage (exec is not idempotent: the step has to ask).
      `  - { id: nap, uses: exec, retry: { attempts: 3 }, with: { command: [node, ${mark}, ${marks}, nap, '3000'] } }`,
      `  - { id: last, uses: exec, with: { command: [node, ${mark}, ${marks}, last] } }`,
    ].join('\n'),
  );
  try {
    const run = cli(['run', file, '--no-worker'], {
      taskQueue,
      stateRoot,
      env: { TEMPORAL_ADDRESS: server.address },
    });
    let output = '';
    run.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    await eventually(() => Promise.resolve(/▶ nap|nap\s+running/.test(output) ? true : undefined), 60_000);
    await server.stop();
    await sleep(OUTAGE_MS);
    server = await startDevServer(options);
    const result = await run;
    expect(result.stdout).toMatch(/Temporal does not answer \(.*\); waiting for it, at most 120 s/);
    expect(result.stdout).toMatch(/Temporal answers again \(after \d+ s\)/);
    expect(result.stdout).toMatch(/outage: passed/);
    expect(result.exitCode).toBe(0);
    const ran = (await readFile(marks, 'utf8')).split('\n').filter(Boolean);
    expect(ran[0]).toBe('first');
    expect(ran.at(-1)).toBe('last');
  } finally {
    worker.kill('SIGTERM');
    await worker;
    await server.stop();
  }
}, 180_000);
