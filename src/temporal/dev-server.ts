/**
 * Starts and stops a Temporal dev server (the `temporal server start-dev` of the CLI): SQLite, Web UI,
 * and the project's search attributes registered from the start.
 */
import { mkdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { execa, type ResultPromise } from 'execa';
import { SEARCH_ATTRIBUTES } from '../../workflows/search-attributes.js';
import { TemporalCliError } from '../errors.js';

/**
 * Settings for a single-user server, each of which cuts the engine's overhead per step:
 * - one partition per task queue, so a task never waits to be forwarded to the partition a poller sits on;
 * - eager activity dispatch, so an activity scheduled by a workflow task starts on the same worker
 *   without a poll round trip;
 * - no 20-per-second cap on the history service's reads of its transfer queue: with the cap, the
 *   workflow task that follows each finished activity waits about 30 ms to be read and sent to matching.
 */
export const DEV_SERVER_DYNAMIC_CONFIG = [
  'matching.numTaskqueueReadPartitions=1',
  'matching.numTaskqueueWritePartitions=1',
  'system.enableActivityEagerExecution=true',
  'history.transferProcessorMaxPollRPS=1000',
];

/**
 * For the SQLite file: a write-ahead log, synced at checkpoints rather than at every commit. The file
 * stays consistent and keeps every committed run if the server or the machine's processes die; only an
 * operating-system crash can lose the last commits. SQLite's default (a rollback journal, synced at every
 * commit) costs several milliseconds per workflow update.
 */
export const SQLITE_FILE_PRAGMAS = ['journal_mode=wal', 'synchronous=normal'];

export interface DevServerOptions {
  cli: string;
  /** SQLite file; in memory when omitted. */
  dbFile?: string;
  host?: string;
  /** Frontend port; a free one when omitted. */
  port?: number;
  /** Web UI port; a free one when omitted; `false` for no UI. */
  uiPort?: number | false;
  namespace?: string;
  /** The server's own output goes here. */
  logFile?: string;
  /** How long to wait for the server to answer. */
  startTimeoutMs?: number;
}

export interface DevServer {
  address: string;
  uiUrl?: string;
  pid: number;
  stop(): Promise<void>;
}

export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, host, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export async function startDevServer(options: DevServerOptions): Promise<DevServer> {
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? (await freePort(host));
  const namespace = options.namespace ?? 'default';
  const args = ['server', 'start-dev', '--ip', host, '--port', String(port), '--namespace', namespace];
  args.push('--log-level', 'warn');
  for (const setting of DEV_SERVER_DYNAMIC_CONFIG) args.push('--dynamic-config-value', setting);
  let uiUrl: string | undefined;
  if (options.uiPort === false) {
    args.push('--headless');
  } else {
    const uiPort = options.uiPort ?? (await freePort(host));
    args.push('--ui-port', String(uiPort));
    uiUrl = `http://${host}:${uiPort}`;
  }
  if (options.dbFile) {
    mkdirSync(path.dirname(options.dbFile), { recursive: true });
    args.push('--db-filename', options.dbFile);
    for (const pragma of SQLITE_FILE_PRAGMAS) args.push('--sqlite-pragma', pragma);
  }
  for (const key of SEARCH_ATTRIBUTES) args.push('--search-attribute', `${key.name}=Keyword`);

  if (options.logFile) mkdirSync(path.dirname(options.logFile), { recursive: true });
  const log = options.logFile ? ({ file: options.logFile, append: true } as const) : undefined;
  const child: ResultPromise = execa(options.cli, args, {
    stdin: 'ignore',
    stdout: log ?? 'ignore',
    stderr: log ?? 'pipe',
    reject: false,
    cleanup: true,
  });
  let exited = false;
  const exit = child.then((result) => {
    exited = true;
    return result;
  });

  const address = `${host}:${port}`;
  const deadline = Date.now() + (options.startTimeoutMs ?? 60_000);
  for (;;) {
    if (exited) {
      const result = await exit;
      throw new TemporalCliError(
        `the Temporal dev server exited with code ${result.exitCode} before answering` +
          (result.stderr
            ? `:\n${String(result.stderr).slice(-1500)}`
            : options.logFile
              ? ` (see ${options.logFile})`
              : ''),
      );
    }
    if (await answers(address, namespace)) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new TemporalCliError(
        `the Temporal dev server did not answer at ${address} within the start timeout`,
      );
    }
    await new Promise((r) => setTimeout(r, 200));
  }

  return {
    address,
    uiUrl,
    pid: child.pid!,
    async stop() {
      if (exited) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exit;
      clearTimeout(timer);
    },
  };
}

/** True when a Temporal frontend answers at `address` and knows `namespace`. */
export async function answers(address: string, namespace = 'default', timeoutMs = 1000): Promise<boolean> {
  if (!(await tcpOpen(address, timeoutMs))) return false;
  let connection: Connection | undefined;
  try {
    connection = await Connection.connect({ address, connectTimeout: timeoutMs });
    await connection.workflowService.describeNamespace({ namespace });
    return true;
  } catch {
    return false;
  } finally {
    await connection?.close();
  }
}

function tcpOpen(address: string, timeoutMs: number): Promise<boolean> {
  const [host, port] = splitAddress(address);
  return new Promise((resolve) => {
    const socket = net.connect({ host, port, timeout: timeoutMs });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(false));
  });
}

function splitAddress(address: string): [string, number] {
  const i = address.lastIndexOf(':');
  return [address.slice(0, i) || '127.0.0.1', Number(address.slice(i + 1))];
}
