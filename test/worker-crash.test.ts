/**
 * A worker SIGKILLed in the middle of a step: a new worker resumes the run at once (it hands the dead
 * worker's step back to Temporal instead of waiting for the step's heartbeat timeout) and no step runs twice.
 */
import { readFile } from 'node:fs/promises';
import { tsToMs } from '@temporalio/common/lib/time.js';
import path from 'node:path';
import { queryProgress } from '../src/client.js';
import type { ScenarioResult } from '../workflows/types.js';
import { alive, workerProcess } from './support/processes.js';
import {
  connect,
  eventually,
  root,
  runningChildren,
  start,
  writePlaybook,
  type TestLab,
} from './support/temporal.js';

const mark = path.join(root, 'test', 'fixtures', 'mark.mjs');

let lab: TestLab;
beforeAll(async () => {
  lab = await connect('crash');
});
afterAll(() => lab?.close());

it('resumes a run on a new worker within seconds of its start after the old one was killed mid-step; completed steps ran once', async () => {
  const marks = path.join(lab.stateRoot, 'marks');
  const file = await writePlaybook(
    'crash',
    [
      'name: crash',
      'steps:',
      `  - { id: first, uses: exec, with: { command: [node, ${mark}, ${marks}, first] } }`,
      // exec is not idempotent, so it is retried (here after the crash) only when the step asks.
      `  - { id: slow, uses: exec, retry: { attempts: 2 }, with: { command: [node, ${mark}, ${marks}, slow, '4000'] } }`,
      `  - { id: last, uses: exec, with: { command: [node, ${mark}, ${marks}, last] } }`,
    ].join('\n'),
  );
  const first = workerProcess(lab.taskQueue, lab.stateRoot, 'crash-worker-1');
  const handle = await start(lab, { playbook: file });
  await eventually(async () => {
    const progress = await queryProgress(handle).catch(() => undefined);
    return progress?.steps[1]?.status === 'running' ? true : undefined;
  });
  // The slow step's command has started (the worker records its children) before the worker dies.
  const [orphan] = await eventually(async () => {
    const children = await runningChildren(lab.stateRoot, handle.workflowId);
    return children.length > 0 ? children : undefined;
  });
  first.kill('SIGKILL');
  await first;

  const spawned = Date.now();
  const second = workerProcess(lab.taskQueue, lab.stateRoot, 'crash-worker-2');
  try {
    // The step's second attempt starts as soon as the new worker is up, not when the step's heartbeat
    // timeout (10 s for exec) tells Temporal that the old worker is gone.
    const restarted = await eventually(async () => {
      const { raw } = await handle.describe();
      const slow = raw.pendingActivities?.find((a) => a.activityId === 'slow');
      return slow?.attempt === 2 && slow.lastStartedTime ? tsToMs(slow.lastStartedTime) : undefined;
    });
    console.log(`second attempt started ${restarted - spawned} ms after the new worker was spawned`);
    expect(restarted - spawned).toBeLessThan(5_000);
    expect(await readFile(path.join(root, 'test-artifacts', 'crash-worker-2.log'), 'utf8')).toMatch(
      /handed back step slow \(attempt 1\) of .*: its worker \(pid \d+\) died/,
    );
    const result = (await handle.result()) as ScenarioResult;
    expect(result.status).toBe('passed');
    expect(result.steps.map((s) => [s.id, s.status, s.attempts])).toEqual([
      ['first', 'passed', 1],
      ['slow', 'passed', 2],
      ['last', 'passed', 1],
    ]);
    // Once the command the killed worker left running is gone, the marks say whether the new worker stopped
    // it (one "slow") or it finished the step a second time behind the retry's back (two).
    await eventually(() => Promise.resolve(alive(orphan) ? undefined : true));
    expect((await readFile(marks, 'utf8')).split('\n').filter(Boolean)).toEqual(['first', 'slow', 'last']);
  } finally {
    second.kill('SIGTERM');
    await second;
  }
}, 90_000);
