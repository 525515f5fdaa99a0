/**
 * The task ledger's rules, without a server: a dead worker's steps are handed back once, a live worker's
 * never; a token the server no longer knows is dropped, one it could not be asked about is kept.
 * (test/worker-crash.test.ts shows the whole path against a real server.)
 */
import { mkdir, mkdtemp, readdir, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ActivityCompletionError, ActivityNotFoundError, type Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { execa } from 'execa';
import { startTimeOf } from '../src/proc.js';
import { workerTasksDir } from '../src/state-layout.js';
import { failDeadWorkersTasks, taskLedger, WORKER_DIED } from '../src/worker/task-ledger.js';

/** A client whose activity.fail answers as `answer` says, recording the tokens it was given. */
function client(answer: (token: string) => Error | undefined) {
  const failed: { token: string; err: unknown }[] = [];
  const fake = {
    activity: {
      fail: (token: Uint8Array, err: unknown) => {
        const text = Buffer.from(token).toString();
        failed.push({ token: text, err });
        const error = answer(text);
        return error ? Promise.reject(error) : Promise.resolve();
      },
    },
  };
  return { failed, client: fake as unknown as Client };
}

async function record(root: string, name: string, token: string, workerPid: number, workerStarted: string) {
  const dir = workerTasksDir(root);
  await mkdir(dir, { recursive: true });
  await writeFile(
    path.join(dir, `${name}.json`),
    JSON.stringify({
      taskToken: Buffer.from(token).toString('base64'),
      workflowId: 'run-1',
      activityId: name,
      activityType: 'exec',
      attempt: 1,
      workerPid,
      workerStarted,
    }),
  );
}

it('hands back the steps of dead workers only, once, and keeps what the server could not be asked', async () => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'tunnel-lab-ledger-'));
  const dead = execa('true');
  await dead;
  await record(root, 'live', 'token-live', process.pid, startTimeOf(process.pid)!);
  // Same pid as this live process but another start time: a dead worker whose pid was reused.
  await record(root, 'reused', 'token-reused', process.pid, '1');
  await record(root, 'dead', 'token-dead', dead.pid!, '1');
  await record(root, 'gone', 'token-gone', dead.pid!, '1');
  await record(root, 'unreachable', 'token-unreachable', dead.pid!, '1');

  const { failed, client: fake } = client((token) => {
    if (token === 'token-gone') return new ActivityNotFoundError('not found');
    if (token === 'token-unreachable') return new ActivityCompletionError('unavailable');
    return undefined;
  });
  const handed = await failDeadWorkersTasks(root, fake);

  expect(failed.map((f) => f.token).sort()).toEqual(
    ['token-dead', 'token-gone', 'token-reused', 'token-unreachable'].sort(),
  );
  expect(handed.map((h) => h.activityId).sort()).toEqual(['dead', 'reused']);
  const failure = failed[0]!.err as ApplicationFailure;
  expect(failure).toBeInstanceOf(ApplicationFailure);
  expect(failure.type).toBe(WORKER_DIED);
  expect(failure.nonRetryable).toBeFalsy();
  expect(failure.nextRetryDelay).toBeDefined();
  // The live worker's task and the one the server could not be asked about stay for later.
  expect((await readdir(workerTasksDir(root))).sort()).toEqual(['live.json', 'unreachable.json']);
});

it('records a task while it runs, in a file only its owner reads, and forgets it when it ends', async () => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'tunnel-lab-ledger-'));
  const env = new MockActivityEnvironment({ taskToken: Buffer.from('the-token'), activityId: 'step' });
  const interceptor = taskLedger(root)(env.context).inbound!;
  let during: string[] = [];
  let mode = 0;
  await env.run(() =>
    interceptor.execute!({ args: [], headers: {} }, async () => {
      during = await readdir(workerTasksDir(root));
      mode = (await stat(path.join(workerTasksDir(root), during[0]!))).mode & 0o777;
      return undefined;
    }),
  );
  expect(during).toHaveLength(1);
  expect(mode).toBe(0o600);
  expect(await readdir(workerTasksDir(root))).toEqual([]);
});
