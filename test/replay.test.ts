/**
 * Replays recorded histories of representative runs against the current workflow code: a change that
 * would break runs in flight fails here. Re-record with `node dist/scripts/record-histories.js` only
 * for an intended incompatible change, guarded by `patched()`.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { bundleWorkflowCode, Worker } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import { freshBundle } from '../src/worker/create-worker.js';
import { root } from './support/temporal.js';

const dir = path.join(root, 'test', 'histories');

async function histories() {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.json')).sort();
  return Promise.all(
    files.map(async (file) => ({
      workflowId: path.basename(file, '.json'),
      history: JSON.parse(await readFile(path.join(dir, file), 'utf8')) as object,
    })),
  );
}

it('replays every recorded history against the current workflow code', async () => {
  const recorded = await histories();
  expect(recorded.map((h) => h.workflowId)).toEqual([
    'cancelled-waited',
    'cancelled',
    'failed-with-finally',
    'flaky-retried',
    'hello-passed',
    'lab-waited',
    'matrix-cell-paused-cell',
    'matrix-cell-paused',
    'paused-retried-skipped',
  ]);
  const results = Worker.runReplayHistories({ workflowBundle: { codePath: freshBundle(root) } }, recorded);
  const replayed: string[] = [];
  for await (const result of results) {
    expect(result.error).toBeUndefined();
    replayed.push(result.workflowId);
  }
  expect(replayed).toHaveLength(recorded.length);
});

it('fails a workflow change that would break runs in flight', async () => {
  const bundle = await bundleWorkflowCode({
    workflowsPath: path.join(root, 'test', 'fixtures', 'changed-workflow', 'index.ts'),
    logger: { info() {}, warn() {}, error() {}, debug() {}, trace() {}, log() {} },
  });
  const hello = (await histories()).find((h) => h.workflowId === 'hello-passed')!;
  await expect(
    Worker.runReplayHistory({ workflowBundle: bundle }, hello.history, 'hello-passed'),
  ).rejects.toBeInstanceOf(DeterminismViolationError);
}, 60_000);
