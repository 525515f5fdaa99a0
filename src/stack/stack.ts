/**
 * The production stack of docker-compose.yml run natively, without Docker: PostgreSQL, the schema
 * one-shot, the Temporal server, the namespace one-shot, the Web UI server and one worker, each from the
 * compose file's versions, environment and scripts (see compose.ts). `up` starts what is not running (and
 * reruns the one-shots, which are idempotent), `down` stops everything it started, `status` says what runs.
 *
 * Processes run in the background, each leading its own process group, with their output in
 * `<state>/stack/logs/` and their pid and start time in `<state>/stack/<name>.json` (a later process
 * with the same pid is never mistaken for one of them). PostgreSQL refuses to run as root: as root it runs
 * as `nobody`, with its files under /var/tmp where that user can reach them.
 */
import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, statSync } from 'node:fs';
import { chown, cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { StackError } from '../errors.js';
import { ensureGoTools } from '../lab/go-tools.js';
import { fillFolder, isComplete } from '../tool-folder.js';
import { startTimeOf } from '../proc.js';
import { ensureTemporalCli } from '../temporal/cli-binary.js';
import { readComposeStack, type ComposeStack } from './compose.js';
import { ensurePostgres, SERVER_TOOLS, UI_TOOLS } from './tools.js';

export interface StackOptions {
  projectRoot: string;
  stateRoot: string;
  /** The server's frontend port (7233); its other ports follow from it (see serverPorts). */
  port: number;
  uiPort: number;
  postgresPort: number;
  log: (line: string) => void;
  /** Where compose would read `${VAR}` from. */
  env?: NodeJS.ProcessEnv;
}

/** The long-running parts, in start order. */
export const COMPONENTS = ['postgresql', 'temporal', 'ui', 'worker'] as const;
export type Component = (typeof COMPONENTS)[number];

interface ProcessRecord {
  pid: number;
  started: string;
  command: string[];
  log: string;
  address: string;
}

const READY_MS = 90_000;
const STOP_MS = 15_000;

/** The server's ports for a frontend port: the image's defaults (7233...; membership 6933...) moved along. */
export function serverPorts(port: number): Record<string, string> {
  // Membership ports land in PostgreSQL's cluster_membership table as SMALLINT: they must stay ≤ 32767.
  if (port - 300 < 1024 || port - 294 > 32767 || port + 10 > 65535) {
    throw new StackError(
      `--port ${port}: the server's ports are ${port - 300}-${port + 10}; pick 1324-33061`,
    );
  }
  const at = (offset: number) => String(port + offset);
  return {
    FRONTEND_GRPC_PORT: at(0),
    HISTORY_GRPC_PORT: at(1),
    MATCHING_GRPC_PORT: at(2),
    WORKER_GRPC_PORT: at(6),
    FRONTEND_HTTP_PORT: at(10),
    FRONTEND_MEMBERSHIP_PORT: at(-300),
    HISTORY_MEMBERSHIP_PORT: at(-299),
    MATCHING_MEMBERSHIP_PORT: at(-298),
    WORKER_MEMBERSHIP_PORT: at(-294),
  };
}

export function stackDir(stateRoot: string): string {
  return path.join(stateRoot, 'stack');
}

const recordFile = (stateRoot: string, name: Component) => path.join(stackDir(stateRoot), `${name}.json`);

async function readRecord(stateRoot: string, name: Component): Promise<ProcessRecord | undefined> {
  try {
    return JSON.parse(await readFile(recordFile(stateRoot, name), 'utf8')) as ProcessRecord;
  } catch {
    return undefined;
  }
}

function running(record: ProcessRecord | undefined): record is ProcessRecord {
  return record !== undefined && startTimeOf(record.pid) === record.started;
}

/** Where PostgreSQL keeps its files: under the state root, or (as root) where `nobody` can reach them. */
function postgresHome(stateRoot: string): string {
  if (process.getuid?.() !== 0) return path.join(stackDir(stateRoot), 'postgresql');
  const key = createHash('sha256').update(path.resolve(stateRoot)).digest('hex').slice(0, 12);
  return path.join('/var/tmp', `tunnel-lab-postgresql-${key}`);
}

/** argv run as `nobody` when this process is root (PostgreSQL will not run as root). */
function unprivileged(argv: string[]): string[] {
  return process.getuid?.() === 0
    ? ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups', ...argv]
    : argv;
}

/** The state of each part: its pid and address when it runs. */
export async function stackStatus(
  stateRoot: string,
): Promise<{ name: Component; running: boolean; pid?: number; address?: string; log?: string }[]> {
  const rows = [];
  for (const name of COMPONENTS) {
    const record = await readRecord(stateRoot, name);
    rows.push(
      running(record)
        ? { name, running: true, pid: record.pid, address: record.address, log: record.log }
        : { name, running: false },
    );
  }
  return rows;
}

/** Builds or finds every program, then starts whatever of the stack is not running. */
export async function stackUp(options: StackOptions): Promise<void> {
  const { projectRoot, stateRoot, log } = options;
  const compose = await readComposeStack(projectRoot, options.env);
  const ports = serverPorts(options.port);
  const serverTools = await ensureGoTools(projectRoot, SERVER_TOOLS, log);
  const uiTools = await ensureGoTools(projectRoot, UI_TOOLS, log);
  const postgres = await ensurePostgres(projectRoot, compose.postgresql.version.split('-')[0]!, log);
  const temporalCli = await ensureTemporalCli(projectRoot, log);
  await mkdir(path.join(stackDir(stateRoot), 'logs'), { recursive: true });
  const address = `127.0.0.1:${options.port}`;
  const basePath = process.env.PATH ?? '/usr/bin:/bin';

  // A failed `up` leaves the stack as it found it: the parts this call started are stopped again.
  const started: Component[] = [];
  try {
    if (await startPostgres(options, compose, postgres)) started.push('postgresql');

    log(`schema: applying ${compose.schema.version} schemas (the compose file's temporal-schema script)`);
    await oneShot(options, 'schema', compose.schema.script!, {
      ...compose.schema.environment,
      SQL_HOST: '127.0.0.1',
      SQL_PORT: String(options.postgresPort),
      SCHEMA_DIR: path.join(serverTools, 'schema'),
      PATH: `${serverTools}${path.delimiter}${basePath}`,
    });

    if (
      await startProcess(options, 'temporal', {
        command: [
          path.join(serverTools, 'temporal-server'),
          ...['--root', serverTools, '--config', 'config', '--env', 'docker', '--allow-no-auth', 'start'],
        ],
        env: {
          ...compose.temporal.environment,
          ...ports,
          POSTGRES_SEEDS: '127.0.0.1',
          DB_PORT: String(options.postgresPort),
          // The template reads the visibility store's port from POSTGRES_PORT, not DB_PORT.
          POSTGRES_PORT: String(options.postgresPort),
          BIND_ON_IP: '127.0.0.1',
          TEMPORAL_BROADCAST_ADDRESS: '127.0.0.1',
          DYNAMIC_CONFIG_FILE_PATH: path.join(serverTools, 'config', 'dynamicconfig', 'docker.yaml'),
        },
        address,
        ready: () => listening(options.port),
      })
    )
      started.push('temporal');

    log("namespace: creating it when missing (the compose file's temporal-namespace script)");
    await oneShot(options, 'namespace', compose.namespace.script!, {
      ...compose.namespace.environment,
      TEMPORAL_ADDRESS: address,
      PATH: `${path.dirname(temporalCli)}${path.delimiter}${basePath}`,
    });

    const uiUrl = `http://127.0.0.1:${options.uiPort}`;
    if (
      await startProcess(options, 'ui', {
        command: [path.join(uiTools, 'ui-server'), '--root', uiTools, '--env', 'docker', 'start'],
        env: {
          ...compose.ui.environment,
          TEMPORAL_ADDRESS: address,
          TEMPORAL_UI_PORT: String(options.uiPort),
        },
        address: uiUrl,
        ready: async () =>
          (await fetch(uiUrl, { signal: AbortSignal.timeout(2_000) }).catch(() => undefined))?.ok === true,
      })
    )
      started.push('ui');

    if (
      await startProcess(options, 'worker', {
        command: [process.execPath, path.join(projectRoot, 'dist', 'src', 'worker', 'main.js')],
        env: {
          PATH: basePath,
          HOME: os.homedir(),
          ...compose.worker.environment,
          TEMPORAL_ADDRESS: address,
          TUNNEL_LAB_STATE: stateRoot,
        },
        address: `task queue ${compose.worker.environment.TEMPORAL_TASK_QUEUE ?? 'tunnel-lab'}`,
        ready: (since) => logSays(since, 'worker serving'),
      })
    )
      started.push('worker');
  } catch (err) {
    for (const name of started.reverse()) {
      const record = await readRecord(stateRoot, name);
      if (running(record)) await stop(record, name === 'postgresql' ? 'SIGINT' : 'SIGTERM');
      await rm(recordFile(stateRoot, name), { force: true });
      log(`${name}: stopped again, since the stack did not come up`);
    }
    throw err;
  }
}

async function startPostgres(options: StackOptions, compose: ComposeStack, native: string): Promise<boolean> {
  const { stateRoot, log } = options;
  if (running(await readRecord(stateRoot, 'postgresql'))) {
    log('postgresql: already running');
    return false;
  }
  const home = postgresHome(stateRoot);
  const asRoot = process.getuid?.() === 0;
  // As root, a copy of the binaries where `nobody` can run them (the project may live under /root).
  const bin = asRoot ? path.join(home, 'native', 'bin') : path.join(native, 'bin');
  if (asRoot && !isComplete(path.join(home, 'native'))) {
    await mkdir(home, { recursive: true, mode: 0o755 });
    await fillFolder(path.join(home, 'native'), (partial) =>
      cp(native, partial, { recursive: true, verbatimSymlinks: true }),
    );
  }
  const data = path.join(home, 'data');
  if (!existsSync(path.join(data, 'PG_VERSION'))) {
    log(`postgresql: initialising ${data}`);
    await rm(data, { recursive: true, force: true });
    await mkdir(data, { recursive: true, mode: 0o700 });
    const password = path.join(home, 'password');
    await writeFile(password, `${compose.postgresql.environment.POSTGRES_PASSWORD ?? 'temporal'}\n`, {
      mode: 0o600,
    });
    if (asRoot) {
      await chown(data, 65534, 65534);
      await chown(password, 65534, 65534);
    }
    const user = compose.postgresql.environment.POSTGRES_USER ?? 'temporal';
    const [initdb, ...initArgs] = unprivileged([
      path.join(bin, 'initdb'),
      ...['-D', data, '-U', user, '--pwfile', password, '-E', 'UTF8', '--no-locale'],
      ...['--auth-local=trust', '--auth-host=scram-sha-256'],
    ]);
    const init = await execa(initdb!, initArgs, { reject: false, all: true });
    await rm(password, { force: true });
    if (init.exitCode !== 0) throw new StackError(`initdb failed:\n${init.all ?? ''}`);
  }
  return startProcess(options, 'postgresql', {
    command: unprivileged([
      path.join(bin, 'postgres'),
      ...['-D', data, '-p', String(options.postgresPort), '-k', data],
      ...['-c', 'listen_addresses=127.0.0.1'],
    ]),
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    address: `127.0.0.1:${options.postgresPort} (${data})`,
    // Listening is not ready: after a crash it first recovers, refusing every connection meanwhile.
    ready: (since) => logSays(since, 'database system is ready to accept connections'),
  });
}

/** Starts one long-running part in the background unless it runs, and waits until it is ready. */
async function startProcess(
  options: StackOptions,
  name: Component,
  spec: {
    command: string[];
    env: Record<string, string>;
    address: string;
    /** Whether it is ready; `since` is its log as of this start. */
    ready: (since: LogSince) => Promise<boolean>;
  },
): Promise<boolean> {
  const { stateRoot, log } = options;
  const existing = await readRecord(stateRoot, name);
  if (running(existing)) {
    log(`${name}: already running (pid ${existing.pid}) at ${existing.address}`);
    return false;
  }
  const logFile = path.join(stackDir(stateRoot), 'logs', `${name}.log`);
  const since: LogSince = { file: logFile, offset: existsSync(logFile) ? statSync(logFile).size : 0 };
  const fd = openSync(logFile, 'a');
  const [file, ...args] = spec.command;
  const child = spawn(file!, args, { env: spec.env, detached: true, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const pid = await new Promise<number>((resolve, reject) => {
    child.once('spawn', () => resolve(child.pid!));
    child.once('error', (err) => reject(new StackError(`${name}: cannot start ${file}: ${err.message}`)));
  });
  child.unref();
  const record: ProcessRecord = {
    pid,
    started: startTimeOf(pid) ?? '',
    command: spec.command,
    log: logFile,
    address: spec.address,
  };
  await writeFile(recordFile(stateRoot, name), JSON.stringify(record, null, 2));
  const deadline = Date.now() + READY_MS;
  while (!(await spec.ready(since))) {
    const problem = !running(record)
      ? `${name} exited while starting`
      : Date.now() > deadline
        ? `${name} was not ready after ${READY_MS / 1000} s`
        : undefined;
    if (problem) {
      await stop(record);
      await rm(recordFile(stateRoot, name), { force: true });
      throw new StackError(`${problem}; its log (${logFile}) ends:\n${await tail(logFile)}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  log(`${name}: running (pid ${pid}) at ${spec.address}`);
  return true;
}

async function oneShot(options: StackOptions, name: string, script: string, env: Record<string, string>) {
  const logFile = path.join(stackDir(options.stateRoot), 'logs', `${name}.log`);
  // As in its container: a clean environment with a home of its own (the temporal CLI keeps its config there).
  const home = path.join(stackDir(options.stateRoot), 'home');
  await mkdir(home, { recursive: true });
  const result = await execa('sh', ['-c', script], {
    env: { HOME: home, ...env },
    extendEnv: false,
    reject: false,
    all: true,
    timeout: 120_000,
  });
  await writeFile(logFile, result.all ?? '');
  if (result.exitCode !== 0) {
    throw new StackError(
      `${name} failed (exit ${result.exitCode ?? result.signal}); its output:\n${await tail(logFile)}`,
    );
  }
}

/** Stops every part, last started first; with `purge`, removes PostgreSQL's data too. */
export async function stackDown(
  stateRoot: string,
  log: (line: string) => void,
  purge = false,
): Promise<void> {
  for (const name of [...COMPONENTS].reverse()) {
    const record = await readRecord(stateRoot, name);
    if (running(record)) {
      // PostgreSQL's fast shutdown is SIGINT (SIGTERM waits for every client to leave).
      await stop(record, name === 'postgresql' ? 'SIGINT' : 'SIGTERM');
      log(`${name}: stopped (pid ${record.pid})`);
    }
    await rm(recordFile(stateRoot, name), { force: true });
  }
  if (purge) {
    await rm(postgresHome(stateRoot), { recursive: true, force: true });
    log(`postgresql: removed its data (${postgresHome(stateRoot)})`);
  }
}

/** SIGTERM to the part's process group, then SIGKILL when it has not ended in STOP_MS. */
export async function stop(record: ProcessRecord, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  const send = (sig: NodeJS.Signals) => {
    try {
      process.kill(-record.pid, sig);
    } catch {
      try {
        process.kill(record.pid, sig);
      } catch {
        // Gone already.
      }
    }
  };
  send(signal);
  const deadline = Date.now() + STOP_MS;
  while (running(record) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  if (running(record)) send('SIGKILL');
  while (running(record)) await new Promise((r) => setTimeout(r, 50));
}

/** Stops one part as a fault would (SIGKILL): the outage tests use it, then `stackUp` brings it back. */
export async function killComponent(stateRoot: string, name: Component): Promise<void> {
  const record = await readRecord(stateRoot, name);
  if (running(record)) await stop(record, 'SIGKILL');
}

/** A part's log from where it stood when the part was started. */
interface LogSince {
  file: string;
  offset: number;
}

async function logSays(since: LogSince, text: string): Promise<boolean> {
  const log = await readFile(since.file).catch(() => Buffer.alloc(0));
  return log.subarray(since.offset).toString('utf8').includes(text);
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function tail(file: string, lines = 30): Promise<string> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}
