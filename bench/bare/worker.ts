/**
 * The floor under a worker's start: the Temporal SDK alone, serving the same workflow bundle with no
 * activities, no spawner, no ledger, no orphan reaping and no search attributes. bench/worker-start.ts
 * starts it as it starts the real worker, so that the difference is what the project adds. It is no part
 * of the product.
 *
 * Environment: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE (default `default`), TEMPORAL_TASK_QUEUE.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// As the real worker loads the SDK (src/worker/sdk.ts): CommonJS, without the ES module scan.
const require = createRequire(import.meta.url);
const { NativeConnection, Worker } = require('@temporalio/worker') as typeof import('@temporalio/worker');

async function main(): Promise<void> {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
  const connection = await NativeConnection.connect({ address: process.env.TEMPORAL_ADDRESS! });
  const worker = await Worker.create({
    connection,
    namespace: process.env.TEMPORAL_NAMESPACE ?? 'default',
    taskQueue: process.env.TEMPORAL_TASK_QUEUE!,
    workflowBundle: { codePath: path.join(root, 'dist', 'workflow-bundle.js') },
    activities: {},
  });
  // The SDK's runtime stops it on SIGINT and SIGTERM.
  try {
    await worker.run();
  } finally {
    await connection.close();
  }
}

main().catch((err: unknown) => {
  console.error(`bare worker failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
