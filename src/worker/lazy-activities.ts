/**
 * The worker's activities, loaded on first use. Importing them (the action registry, its zod schemas and
 * what the actions run on: execa, ssh2, yaml, the lab runtime) takes about as long as the rest of the
 * worker's start, and nothing of it is needed to start polling; so this module imports none of it.
 *
 * Temporal needs each activity's name when the worker is created, and the names come from that same
 * registry. Instead, the worker registers one activity named `default`, which the SDK calls for every
 * activity type it has no function of its own for: it finds the action's activity by the task's type,
 * loading them all the first time. A type that is no activity fails as the SDK fails it (NotFoundError,
 * retryable). No workflow schedules local activities, the only ones for which the SDK checks the names
 * it was given.
 */
import type { ActionDeps } from '../../activities/action.js';
import { ApplicationFailure, Context } from './sdk.js';

type Activity = (...args: unknown[]) => Promise<unknown>;

export interface LazyActivities {
  /** What Worker.create registers. */
  activities: { default: Activity };
  /** Loads the activities now (once); rejects when they cannot be loaded. */
  load: () => Promise<void>;
}

export function lazyActivities(deps: ActionDeps): LazyActivities {
  let loaded: Promise<Record<string, Activity>> | undefined;
  const activities = () =>
    (loaded ??= import('../../activities/index.js').then(
      (m) => m.createActivities(deps) as Record<string, Activity>,
    ));
  return {
    activities: {
      async default(...args: unknown[]): Promise<unknown> {
        const { activityType } = Context.current().info;
        const all = await activities();
        const activity = Object.hasOwn(all, activityType) ? all[activityType] : undefined;
        if (!activity)
          throw ApplicationFailure.create({
            type: 'NotFoundError',
            message: `Activity function ${activityType} is not registered on this Worker, available activities: ${JSON.stringify(Object.keys(all))}`,
            nonRetryable: false,
          });
        return activity(...args);
      },
    },
    load: async () => {
      await activities();
    },
  };
}
