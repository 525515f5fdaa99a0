/** `npm run worker`: serves the tunnel-lab task queue until SIGINT or SIGTERM. */
import { settings } from '../config.js';
import { createWorker } from './create-worker.js';
import { installCompactLogger } from './logging.js';

async function main(): Promise<void> {
  installCompactLogger();
  const config = settings();
  const running = await createWorker({
    address: config.address,
    namespace: config.namespace,
    taskQueue: config.taskQueue,
    deps: {
      projectRoot: config.projectRoot,
      stateRoot: config.stateRoot,
      playbookDirs: config.playbookDirs,
      ...(config.labHost ? { labHost: config.labHost } : {}),
    },
  });
  const queues = [config.taskQueue, ...(running.hostWorker ? [running.hostWorker.options.taskQueue] : [])];
  console.log(
    `worker serving task queue ${queues.join(' and ')} at ${config.address} (namespace ${config.namespace}); Ctrl-C stops it`,
  );
  try {
    await running.run();
  } finally {
    await running.close();
  }
}

main().catch((err: unknown) => {
  console.error(`worker failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
