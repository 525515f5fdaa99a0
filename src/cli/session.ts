/**
 * Connects the CLI to Temporal. When nothing answers at the default address it starts the embedded dev
 * server (SQLite under .state/, so runs survive restarts), and it runs a worker in this process when asked.
 * `close()` stops whatever it started.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { DEFAULT_UI_PORT, type Settings } from '../config.js';
import { connectClient } from '../client.js';
import { TemporalUnavailableError } from '../errors.js';
import { ensureTemporalCli } from '../temporal/cli-binary.js';
import { answers, startDevServer, type DevServer } from '../temporal/dev-server.js';
import type { RunningWorker } from '../worker/create-worker.js';

export interface Session {
  client: Client;
  /** Base URL of the Web UI, when known. */
  uiUrl?: string;
  /** True when this process runs the worker (so it must stay up while runs progress). */
  ownsWorker: boolean;
  /** True when this process started the embedded dev server, whose Web UI ends with it. */
  ownsServer: boolean;
  close(): Promise<void>;
}

/** How long closing a session waits for its worker to stop before the process leaves without it. */
const WORKER_STOP_MS = 1_000;

export interface SessionOptions {
  /**
   * Run a worker in this process for as long as the session lasts. Temporal spreads tasks over all
   * workers of a queue, so this is harmless beside workers elsewhere, and the run never waits for a
   * worker that is not there (the server cannot tell a dead poller from a live one for about a minute).
   */
  worker: boolean;
  log: (line: string) => void;
}

export async function openSession(config: Settings, options: SessionOptions): Promise<Session> {
  // The worker's part of the SDK loads while the server is looked for or started, not before.
  const workerModules = options.worker
    ? Promise.all([import('../worker/create-worker.js'), import('../worker/logging.js')])
    : undefined;
  // Not left unhandled should the server fail first; awaited below, where its own failure is thrown.
  workerModules?.catch(() => {});
  let server: DevServer | undefined;
  let address = config.address;
  let uiUrl = process.env.TEMPORAL_UI_URL || undefined;
  if (!(await answers(address, config.namespace))) {
    if (!config.addressIsDefault) {
      throw new TemporalUnavailableError(
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
  if (workerModules) {
    const [{ createWorker }, { installCompactLogger }] = await workerModules;
    // The in-process worker's own log goes to a file; the terminal shows the run's progress.
    const logFile = path.join(config.stateRoot, 'worker.log');
    mkdirSync(path.dirname(logFile), { recursive: true });
    installCompactLogger((line) => appendFileSync(logFile, `${line}\n`), { handleSignals: false });
    worker = await createWorker({
      address,
      namespace: config.namespace,
      taskQueue: config.taskQueue,
      deps: {
        projectRoot: config.projectRoot,
        stateRoot: config.stateRoot,
        playbookDirs: config.playbookDirs,
        ...(config.labHost ? { labHost: config.labHost } : {}),
      },
    });
    workerRun = worker.run();
  }

  return {
    client,
    uiUrl,
    ownsWorker: worker !== undefined,
    ownsServer: server !== undefined,
    async close() {
      if (worker) {
        worker.shutdown();
        // The worker stops polling at once, but may wait on tasks the server had already handed it
        // (once 30 s). This process's runs are over by now: it waits a moment, then leaves those tasks to
        // time out and go to another worker, as they would if it had been killed.
        const stopped = await Promise.race([
          workerRun!.then(
            () => true,
            () => true,
          ),
          new Promise<false>((resolve) => setTimeout(() => resolve(false), WORKER_STOP_MS).unref()),
        ]);
        if (stopped) await worker.close();
      }
      await client.connection.close();
      await server?.stop();
    },
  };
}
