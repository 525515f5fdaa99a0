/** JSON state files of the simulated lab, updated under a lock because stand-ins run in parallel. */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const LOCK_WAIT_MS = 20;
const LOCK_STALE_MS = 30_000;

export function readState<T>(stateDir: string, name: string, initial: T): T {
  const file = path.join(stateDir, `${name}.json`);
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as T) : initial;
}

/** Reads, changes and writes one state file while holding its lock; returns what `change` returns. */
export async function updateState<T, R>(
  stateDir: string,
  name: string,
  initial: T,
  change: (state: T) => R | Promise<R>,
): Promise<R> {
  const lock = path.join(stateDir, `${name}.lock`);
  const started = Date.now();
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      if (Date.now() - started > LOCK_STALE_MS) rmSync(lock, { recursive: true, force: true });
      await new Promise((r) => setTimeout(r, LOCK_WAIT_MS));
    }
  }
  try {
    const state = readState(stateDir, name, initial);
    const result = await change(state);
    const file = path.join(stateDir, `${name}.json`);
    // 0600: a state file may hold key material (the cluster's Secrets, as etcd's data folder does).
    writeFileSync(`${file}.tmp`, JSON.stringify(state, null, 2), { mode: 0o600 });
    renameSync(`${file}.tmp`, file);
    return result;
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}
