/**
 * Starting and stopping the lab's stand-in host (sim/standin-host.ts): one process per lab, started with
 * the lab's first machine and stopped with its last, as the lab's sshd is (sim/vagrant.ts). Its files
 * live in `<sim state>/standin-host/`: `address` (`PORT TOKEN PID`, mode 0600, what the bash client
 * sim/lib/standin-client.sh reads) and `host.log` (one line per call it answered); `<sim state>/standin-host.json`
 * records its pid.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../../src/config.js';
import { simProgramPath } from './bundles.js';
import { isOurs, stopTree } from './procs.js';
import { updateState } from './state.js';

/** The state file name of the host's record. */
export const STANDIN_HOST = 'standin-host';

const START_TIMEOUT_MS = 10_000;

export interface StandinHostFiles {
  /** The host's folder, also on its command line: how its process is told apart from any other. */
  dir: string;
  address: string;
  log: string;
}

export function standinHostFiles(simState: string): StandinHostFiles {
  const dir = path.join(simState, STANDIN_HOST);
  return { dir, address: path.join(dir, 'address'), log: path.join(dir, 'host.log') };
}

/** What `address` says: where the host listens and the token a call must present. */
export interface StandinHostAddress {
  port: number;
  token: string;
  pid: number;
}

export function readStandinHostAddress(simState: string): StandinHostAddress | undefined {
  const { address } = standinHostFiles(simState);
  if (!existsSync(address)) return undefined;
  const [port, token, pid] = readFileSync(address, 'utf8').trim().split(' ');
  if (!port || !token || !pid) return undefined;
  return { port: Number(port), token, pid: Number(pid) };
}

/** Starts the lab's stand-in host unless it runs; returns its pid. Safe to call from parallel processes. */
export async function ensureStandinHost(simState: string): Promise<number> {
  const files = standinHostFiles(simState);
  return updateState<{ pid?: number }, number>(simState, STANDIN_HOST, {}, async (record) => {
    if (record.pid && isOurs(record.pid, files.dir)) return record.pid;
    mkdirSync(files.dir, { recursive: true });
    rmSync(files.address, { force: true });
    const log = openSync(files.log, 'a');
    // From the build, as the stand-ins run; detached: it outlives the vagrant call that starts it.
    const child = spawn(process.execPath, [simProgramPath(projectRoot(), 'standin-host'), files.dir], {
      detached: true,
      stdio: ['ignore', log, log],
    });
    child.unref();
    const pid = child.pid!;
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (readStandinHostAddress(simState)?.pid !== pid) {
      if (!isOurs(pid, files.dir) || Date.now() > deadline) {
        await stopTree(pid, files.dir);
        const said = readFileSync(files.log, 'utf8').trim().split('\n').slice(-5).join('\n');
        throw new Error(`the simulated lab's stand-in host did not start${said ? `: ${said}` : ''}`);
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    record.pid = pid;
    return pid;
  });
}

/** Stops the lab's stand-in host; calls made after it go to the stand-ins as processes of their own. */
export async function stopStandinHost(simState: string): Promise<void> {
  if (!existsSync(simState)) return;
  const files = standinHostFiles(simState);
  await updateState<{ pid?: number }, void>(simState, STANDIN_HOST, {}, async (record) => {
    rmSync(files.address, { force: true });
    await stopTree(record.pid, files.dir);
    delete record.pid;
  });
}

/** One call as the client sends it (see sim/standin-host.ts for the protocol). */
export interface HostRequest {
  token: string;
  tool: string;
  cwd: string;
  argv: string[];
  env: NodeJS.ProcessEnv;
}

/** The request in `data` once all of it arrived; undefined while incomplete; null when malformed. */
export function parseHostRequest(data: Buffer): HostRequest | undefined | null {
  const fields: string[] = [];
  let start = 0;
  for (let at = data.indexOf(0); at !== -1; at = data.indexOf(0, start)) {
    fields.push(data.subarray(start, at).toString('utf8'));
    start = at + 1;
    if (fields.length < 4) continue;
    const argc = Number(fields[3]);
    if (!Number.isInteger(argc) || argc < 0) return null;
    // Token, tool, folder, count, the arguments, at least the empty field that ends the environment.
    if (fields.length > 4 + argc && fields[fields.length - 1] === '') {
      const env: NodeJS.ProcessEnv = {};
      for (const entry of fields.slice(4 + argc, -1)) {
        const eq = entry.indexOf('=');
        if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
      }
      const [token, tool, cwd] = fields as [string, string, string];
      return { token, tool, cwd, argv: fields.slice(4, 4 + argc), env };
    }
  }
  return undefined;
}
