/**
 * The worker's one `default` activity (src/worker/lazy-activities.ts): it runs the activity of the task's
 * type, loading the activities on first use, and fails a type that is no activity as the SDK would.
 */
import os from 'node:os';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { ApplicationFailure } from '@temporalio/activity';
import { createActivities } from '../activities/index.js';
import { lazyActivities } from '../src/worker/lazy-activities.js';
import { root } from './support/temporal.js';

const deps = { projectRoot: root, stateRoot: os.tmpdir() };
const logger = new DefaultLogger('ERROR');

it('runs the activity named by the task, as the eager registration did', async () => {
  const { activities } = lazyActivities(deps);
  const env = new MockActivityEnvironment({ activityType: 'loadPlaybook', taskQueue: 'q' }, { logger });
  const plan: unknown = await env.run(activities.default, { playbook: 'hello' });
  expect(plan).toMatchObject({ steps: expect.any(Array) });
});

it('fails a type that is no activity as the SDK does', async () => {
  const { activities, load } = lazyActivities(deps);
  await load();
  const env = new MockActivityEnvironment({ activityType: 'no.such' }, { logger });
  const err = await env.run(activities.default, {}).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ApplicationFailure);
  expect(err).toMatchObject({ type: 'NotFoundError', nonRetryable: false });
  // The SDK's message lists the registered activities: the same list as when all were registered.
  expect((err as Error).message).toContain(JSON.stringify(Object.keys(createActivities(deps))));
});
