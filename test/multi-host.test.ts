/**
 * Two lab hosts serving one Temporal task queue: each run is pinned to one host, and its steps run on
 * that host's worker (and in that host's state folder), whichever worker ran the workflow.
 */
import { existsSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createWorker, type RunningWorker } from '../src/worker/create-worker.js';
import type { ScenarioResult } from '../workflows/types.js';
import { connect, root, serverAddress, start, writePlaybook, type TestLab } from './support/temporal.js';

let lab: TestLab;
const hosts: Record<string, { stateRoot: string; running: RunningWorker; done: Promise<void> }> = {};

beforeAll(async () => {
  lab = await connect('multi-host');
  for (const host of ['alpha', 'beta']) {
    const stateRoot = await mkdtemp(path.join(os.tmpdir(), `lab-host-${host}-`));
    const running = await createWorker({
      address: serverAddress(),
      namespace: 'default',
      taskQueue: lab.taskQueue,
      deps: { projectRoot: root, stateRoot, labHost: host, playbookDirs: [os.tmpdir()] },
      tuning: { shutdownGraceTime: '1s' },
    });
    hosts[host] = { stateRoot, running, done: running.run() };
  }
});

afterAll(async () => {
  for (const { running, done } of Object.values(hosts)) {
    running.shutdown();
    await done;
    await running.close();
  }
  await lab.close();
});

it('runs two scenarios at once, each one on its own lab host: its worker, its simulated lab', async () => {
  // Each host boots its own simulated lab (its own sshd, in its own state folder) and reads it over ssh.
  const file = await writePlaybook(
    'where',
    [
      'name: where',
      'lab: sim',
      'steps:',
      '  - { id: boot, uses: vm.up, with: { machines: [external-proxy] } }',
      '  - { id: mark, uses: log.mark, with: { machine: external-proxy, file: accessLog, name: m } }',
      '  - { id: host, uses: exec, with: { command: [hostname] } }',
      'finally:',
      '  - { id: destroy, uses: vm.destroy }',
    ].join('\n'),
  );
  const runs = await Promise.all(
    ['alpha', 'beta'].map(async (host) => ({
      host,
      handle: await start(lab, { playbook: file, labHost: host }),
    })),
  );
  for (const { host, handle } of runs) {
    const result = (await handle.result()) as ScenarioResult;
    expect(result.status).toBe('passed');
    const history = await handle.fetchHistory();
    const steps = history.events!.filter(
      (e) =>
        e.activityTaskScheduledEventAttributes &&
        e.activityTaskScheduledEventAttributes.activityType?.name !== 'loadPlaybook',
    );
    // Which lab the steps drive (for its lease) is read on the pinned host too, where the lab's folders are.
    expect(steps.map((e) => e.activityTaskScheduledEventAttributes!.activityType!.name)[0]).toBe(
      'labIdentity',
    );
    expect(steps.map((e) => e.activityTaskScheduledEventAttributes!.taskQueue!.name)).toEqual(
      Array(5).fill(`${lab.taskQueue}@${host}`),
    );
    const identities = history
      .events!.filter((e) => e.activityTaskStartedEventAttributes)
      .map((e) => e.activityTaskStartedEventAttributes!.identity);
    // The first activity (loadPlaybook) may run on either host; every step runs on the pinned one.
    expect(identities.slice(1).every((id) => id?.endsWith(`/lab-host=${host}`))).toBe(true);
    const other = host === 'alpha' ? 'beta' : 'alpha';
    expect(existsSync(path.join(hosts[host]!.stateRoot, 'runs', handle.workflowId, 'lab', 'sim'))).toBe(true);
    expect(existsSync(path.join(hosts[other]!.stateRoot, 'runs', handle.workflowId))).toBe(false);
  }
});
