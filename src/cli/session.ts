/**
 * Connects the CLI to Temporal. When nothing answers at the default address it starts the embedded dev
 * server (SQLite under .state/, so runs survive restarts); when no worker serves the task queue it runs
 * one in this process. `close()` stops whatever it started.
 */
import path from 'node:path';
import type { Client } from '@temporalio/client';
import proto from '@temporalio/proto';
import { DEFAULT_UI_PORT, type Settings } from '../config.js';
import { connectClient } from '../client.js';
import { ExitError } from '../errors.js';
import { ensureTemporalCli } from '../temporal/cli-binary.js';
import { answers, startDevServer, type DevServer } from '../temporal/dev-server.js';
import { createWorker, type RunningWorker } from '../worker/create-worker.js';

export interface Session {
  client: Client;
  /** Base URL of the Web UI, when known. */
  uiUrl?: string;
  /** True when this process runs the worker (so it must stay up while runs progress). */
  ownsWorker: boolean;
  close(): Promise<void>;
}

export interface SessionOptions {
  /** Start an in-process worker when none polls the task queue. */
  worker: boolean;
  log: (line: string) => void;
}

const RECENT_POLLER_MS = 30_000;

export async function openSession(config: Settings, options: SessionOptions): Promise<Session> {
  let server: DevServer | undefined;
  let address = config.address;
  let uiUrl = process.env.TEMPORAL_UI_URL || undefined;
  if (!(await answers(address, config.namespace))) {
    if (!config.addressIsDefault) {
      throw new ExitError(
        3,
        `no Temporal server answers at TEMPORAL_ADDRESS=${address}; start it, or unset TEMPORAL_ADDRESS to use the embedded dev server`,
      );
    }
    const cli = await ensureTemporalCli(config.projectRoot, options.log);
    const [host, port] = address.split(':');
    options.log(
      `starting the embedded Temporal dev server at ${address} (data in ${path.join(config.stateRoot, 'temporal')})`,
    );
    server = await startDevServer({
      cli,
      host,
      port: Number(port),
      uiPort: DEFAULT_UI_PORT,
      namespace: config.namespace,
      dbFile: path.join(config.stateRoot, 'temporal', 'dev.db'),
      logFile: path.join(config.stateRoot, 'temporal', 'server.log'),
    });
    address = server.address;
    uiUrl = server.uiUrl;
  } else if (!uiUrl && address === '127.0.0.1:7233') {
    uiUrl = `http://127.0.0.1:${DEFAULT_UI_PORT}`;
  }

  const client = await connectClient(address, config.namespace);
  let worker: RunningWorker | undefined;
  let workerRun: Promise<void> | undefined;
  if (options.worker && !(await hasRecentPoller(client, config))) {
    worker = await createWorker({
      address,
      namespace: config.namespace,
      taskQueue: config.taskQueue,
      deps: { projectRoot: config.projectRoot, stateRoot: config.stateRoot },
    });
    workerRun = worker.worker.run();
  }

  return {
    client,
    uiUrl,
    ownsWorker: worker !== undefined,
    async close() {
      if (worker) {
        worker.worker.shutdown();
        await workerRun?.catch(() => undefined);
        await worker.close();
      }
      await client.connection.close();
      await server?.stop();
    },
  };
}

async function hasRecentPoller(client: Client, config: Settings): Promise<boolean> {
  const response = await client.workflowService.describeTaskQueue({
    namespace: config.namespace,
    taskQueue: { name: config.taskQueue },
    taskQueueType: proto.temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
  });
  const now = Date.now();
  return (response.pollers ?? []).some((poller) => {
    const seconds = Number(poller.lastAccessTime?.seconds ?? 0);
    return now - seconds * 1000 < RECENT_POLLER_MS;
  });
}
