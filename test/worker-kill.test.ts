/**
 * A worker SIGKILLed during a step of tls-passthrough on the simulated lab: the run completes, no completed
 * step runs again, and the killed step starts again within seconds of the new worker's spawn (the new
 * worker hands the dead one's step back instead of waiting out its heartbeat timeout). Three kinds of step
 * here: a lab action, a probe in a parallel group, and the finally step; `npm run bench:kill` kills during
 * every step in turn and prints the figures. The probe is a direct one: a tunnelled probe killed after its
 * tunnel opened tunnels again when it runs again, as it would on real machines, and the proxy's log then
 * holds two lines for that host where the playbook's check asks for one. A matrix run whose worker dies during a cell goes on with
 * that cell, and no cell or completed step starts again.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import proto from '@temporalio/proto';
import { killDuring, startWorker, stopped } from '../bench/kill-during.js';
import { startScenario } from '../src/client.js';
import type { ScenarioResult } from '../workflows/types.js';
import { root, serverAddress } from './support/temporal.js';

let connection: Connection;
let client: Client;
beforeAll(async () => {
  connection = await Connection.connect({ address: serverAddress() });
  client = new Client({ connection });
});
afterAll(() => connection?.close());

it.each(['vms', 'direct-a', 'teardown'])(
  'recovers from a worker killed during %s within seconds, running no completed step again',
  async (step) => {
    const result = await killDuring(client, {
      root,
      address: serverAddress(),
      playbook: 'tls-passthrough',
      lab: 'sim',
      step,
    });
    console.log(`${step}: restarted ${result.restartMs} ms after the new worker's spawn`);
    expect(result).toMatchObject({ caught: true, status: 'passed', rescheduled: [] });
    // Without the hand-back the step waits out its heartbeat timeout (30 s for the lab actions).
    expect(result.restartMs).toBeLessThan(5_000);
  },
  180_000,
);

it('resumes a matrix run whose worker was killed during a cell, starting no cell and no completed step again', async () => {
  const stateRoot = await mkdtemp(path.join(os.tmpdir(), 'kill-matrix-'));
  const playbook = path.join(stateRoot, 'kill-grid.yaml');
  await writeFile(
    playbook,
    [
      'name: kill-grid',
      "vars: { n: '1' }",
      "matrix: { axes: { n: ['1', '2', '3'] }, maxParallel: 1 }",
      'steps:',
      "  - { id: first, uses: exec, with: { command: ['true'] } }",
      "  - { id: nap, uses: exec, retry: { attempts: 3 }, with: { command: [sleep, '2'] } }",
      '',
    ].join('\n'),
  );
  const taskQueue = `kill-matrix-${Date.now()}`;
  const env = process.env.TUNNEL_LAB_PLAYBOOK_DIRS;
  process.env.TUNNEL_LAB_PLAYBOOK_DIRS = stateRoot;
  let worker = startWorker(root, serverAddress(), stateRoot, taskQueue);
  try {
    const handle = await startScenario(client, taskQueue, { playbook });
    // Killed while the second cell sleeps: the first cell has passed.
    for (;;) {
      const state = await handle.query<ScenarioResult>('progress').catch(() => undefined);
      const second = state?.cells?.[1];
      if (second?.status === 'running') {
        const cell = await client.workflow
          .getHandle(second.workflowId)
          .query<ScenarioResult>('progress')
          .catch(() => undefined);
        if (cell?.steps.find((s) => s.id === 'nap')?.status === 'running') break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    worker.kill('SIGKILL');
    await stopped(worker);
    worker = startWorker(root, serverAddress(), stateRoot, taskQueue);
    const result = (await handle.result()) as ScenarioResult;
    expect(result.cells!.map((c) => c.status)).toEqual(['passed', 'passed', 'passed']);

    const Type = proto.temporal.api.enums.v1.EventType;
    const events = async (id: string) => (await client.workflow.getHandle(id).fetchHistory()).events ?? [];
    const started = (await events(handle.workflowId)).filter(
      (e) => e.eventType === Type.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED,
    );
    expect(started).toHaveLength(3);
    for (const cell of result.cells!) {
      const scheduled = (await events(cell.workflowId))
        .filter((e) => e.eventType === Type.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
        .map((e) => e.activityTaskScheduledEventAttributes!.activityId);
      // One activity per step: a completed step never ran again (the killed one retried as an attempt).
      expect(scheduled.filter((id) => id === 'first' || id === 'nap')).toEqual(['first', 'nap']);
    }
  } finally {
    worker.kill('SIGTERM');
    await stopped(worker);
    if (env === undefined) delete process.env.TUNNEL_LAB_PLAYBOOK_DIRS;
    else process.env.TUNNEL_LAB_PLAYBOOK_DIRS = env;
  }
}, 180_000);
