/**
 * Records the event histories of representative runs into test/histories/, for the replay test that
 * keeps workflow changes deterministic. Re-record only for a change that is meant to be incompatible
 * (and then guard the old path with `patched()` so runs in flight still replay), or to add one:
 * `node dist/scripts/record-histories.js [NAME...]` records only the named runs.
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { execa } from 'execa';
import { parse, stringify } from 'yaml';
import { projectRoot } from '../src/config.js';
import { queryProgress, resumeScenario, scenarioOutcome } from '../src/client.js';
import { ensureTemporalCli } from '../src/temporal/cli-binary.js';
import { startDevServer } from '../src/temporal/dev-server.js';
import { createWorker } from '../src/worker/create-worker.js';
import { WORKFLOW_TYPE, type ScenarioInput } from '../workflows/types.js';

const root = projectRoot();
const fixture = (name: string) => path.join(root, 'test', 'fixtures', name);

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const cli = await ensureTemporalCli(root);
  const server = await startDevServer({ cli, uiPort: false });
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'histories-'));
  const connection = await Connection.connect({ address: server.address });
  const client = new Client({ connection });
  const taskQueue = 'record-histories';
  const running = await createWorker({
    address: server.address,
    namespace: 'default',
    taskQueue,
    deps: { projectRoot: root, stateRoot: tmp, playbookDirs: [tmp] },
  });
  const playbook = async (name: string, text: string) => {
    const file = path.join(tmp, `${name}.yaml`);
    await writeFile(file, text);
    return file;
  };
  const start = (id: string, input: ScenarioInput) =>
    client.workflow.start(WORKFLOW_TYPE, { taskQueue, workflowId: id, args: [input] });
  const waitPaused = async (handle: WorkflowHandle) => {
    for (;;) {
      const state = await queryProgress(handle).catch(() => undefined);
      if (state?.status === 'paused') return;
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  const scenarios: Record<string, () => Promise<WorkflowHandle>> = {
    'hello-passed': () => start('hello-passed', { playbook: 'hello' }),
    'flaky-retried': async () =>
      start('flaky-retried', {
        playbook: await playbook(
          'flaky',
          `name: flaky\nsteps:\n  - { id: flaky, uses: exec, retry: { attempts: 3, interval: 100ms }, with: { command: [node, ${fixture('flaky.mjs')}, ${tmp}/count, '2'] } }\nfinally:\n  - { id: z, uses: exec, with: { command: ['true'] } }\n`,
        ),
      }),
    'failed-with-finally': async () =>
      start('failed-with-finally', {
        playbook: await playbook(
          'failing',
          "name: failing\nsteps:\n  - { id: a, uses: exec, continueOnError: true, retry: { attempts: 1 }, with: { command: ['false'] } }\n  - { id: b, uses: exec, retry: { attempts: 2, interval: 100ms }, with: { command: ['false'] } }\nfinally:\n  - { id: z, uses: exec, with: { command: ['true'] } }\n",
        ),
      }),
    'paused-retried-skipped': async () => {
      const handle = await start('paused-retried-skipped', {
        playbook: await playbook(
          'paused',
          `name: paused\nonFailure: pause\nsteps:\n  - { id: gate, uses: exec, retry: { attempts: 1 }, with: { command: [test, -e, ${tmp}/open] } }\n  - { id: other, uses: exec, retry: { attempts: 1 }, with: { command: ['false'] } }\n`,
        ),
      });
      await waitPaused(handle);
      await writeFile(`${tmp}/open`, '');
      await resumeScenario(handle, 'retry');
      await waitPaused(handle);
      await resumeScenario(handle, 'skip');
      return handle;
    },
    // Recorded before cancelled steps were waited for (the wait-for-cancelled-steps patch), and after.
    cancelled: () => cancelled('cancelled'),
    'cancelled-waited': () => cancelled('cancelled-waited'),
    // A run that waits for its lab while another holds it, then takes and releases the lab's lease.
    'lab-waited': async () => {
      const lab = await keptSimLab('recorded');
      const hold = await playbook(
        'hold',
        "name: hold\nsteps:\n  - { id: tools, uses: tools.check, with: { tools: [vagrant] } }\n  - { id: hold, uses: exec, with: { command: [sleep, '2'] } }\nfinally:\n  - { id: z, uses: exec, with: { command: ['true'] } }\n",
      );
      const holder = await start('lab-held', { playbook: hold, lab });
      for (;;) {
        const state = await queryProgress(holder).catch(() => undefined);
        if (state?.steps[0]?.status === 'passed') break;
        await new Promise((r) => setTimeout(r, 100));
      }
      return start('lab-waited', { playbook: hold, lab });
    },
    // A matrix run whose second cell pauses on a failure and is answered by its own run id: the cell tells
    // the matrix run (the cellPaused signal) when it pauses and when it runs again.
    'matrix-cell-paused': async () => {
      const handle = await start('matrix-cell-paused', {
        playbook: await playbook(
          'pause-grid',
          `name: pause-grid\nonFailure: pause\nvars: { n: 1 }\nmatrix: { axes: { n: [1, 2] }, failFast: false, maxParallel: 1 }\nsteps:\n  - { id: check, uses: exec, retry: { attempts: 1 }, with: { command: [sh, -c, 'test "\${{ vars.n }}" = 1 || test -e ${tmp}/cell-ok'] } }\n`,
        ),
      });
      const cell = client.workflow.getHandle('matrix-cell-paused.2');
      for (;;) {
        const state = await queryProgress(handle).catch(() => undefined);
        if (state?.cells?.some((c) => c.paused)) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      await writeFile(`${tmp}/cell-ok`, '');
      await resumeScenario(cell, 'retry');
      return handle;
    },
    // Its paused cell's own run.
    'matrix-cell-paused-cell': () => Promise.resolve(client.workflow.getHandle('matrix-cell-paused.2')),
  };
  /** labs/sim.yaml as a kept lab (its machines outlive runs, so runs on it share it). */
  async function keptSimLab(name: string): Promise<string> {
    const source = path.join(root, 'labs', 'sim.yaml');
    const def = parse(await readFile(source, 'utf8')) as Record<string, unknown> & {
      tools: Record<string, string>;
    };
    for (const [tool, file] of Object.entries(def.tools)) def.tools[tool] = path.resolve(root, 'labs', file);
    Object.assign(def, { name, lifetime: 'lab' });
    const file = path.join(tmp, `${name}.yaml`);
    await writeFile(file, stringify(def));
    return file;
  }
  async function cancelled(id: string): Promise<WorkflowHandle> {
    const handle = await start(id, {
      playbook: await playbook(
        'cancel',
        "name: cancel\nsteps:\n  - { id: long, uses: exec, with: { command: [sleep, '30'] } }\nfinally:\n  - { id: z, uses: exec, with: { command: ['true'] } }\n",
      ),
    });
    for (;;) {
      const state = await queryProgress(handle).catch(() => undefined);
      if (state?.steps[0]?.status === 'running') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    await handle.cancel();
    return handle;
  }
  const only = process.argv.slice(2);
  const unknown = only.filter((name) => !(name in scenarios));
  if (unknown.length > 0) throw new Error(`no such recorded run: ${unknown.join(', ')}`);

  try {
    await running.worker.runUntil(async () => {
      for (const [name, run] of Object.entries(scenarios)) {
        if (only.length > 0 && !only.includes(name)) continue;
        const handle = await run();
        const result = await scenarioOutcome(handle);
        const shown = await execa(cli, [
          'workflow',
          'show',
          '--address',
          server.address,
          '-w',
          handle.workflowId,
          '--output',
          'json',
        ]);
        await writeFile(path.join(root, 'test', 'histories', `${name}.json`), shown.stdout + '\n');
        console.log(`${name}: ${result.status}`);
      }
    });
  } finally {
    await running.close();
    await connection.close();
    await server.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
