/**
 * Files a worker leaves about what it is doing (the commands it runs, the steps it runs), each naming the
 * worker by pid and start time, so that a later worker can tell a dead worker's files from a live one's.
 */
import { existsSync, readdirSync, readFileSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { startTimeOf } from '../proc.js';

/** Which worker wrote a record. */
export interface WorkerStamp {
  workerPid: number;
  workerStarted: string;
}

/** This process, as records name it. */
export function thisWorker(): WorkerStamp {
  return { workerPid: process.pid, workerStarted: startTimeOf(process.pid) ?? '' };
}

/**
 * The records in `dir` written by workers that no longer run, with their files (the caller removes each
 * once handled). Unreadable or malformed files are removed; a live worker's records are left alone.
 */
export function deadWorkersRecords<T extends WorkerStamp>(
  dir: string,
  valid: (record: Partial<T>) => boolean,
): { file: string; record: T }[] {
  if (!existsSync(dir)) return [];
  const found: { file: string; record: T }[] = [];
  for (const entry of readdirSync(dir)) {
    const file = path.join(dir, entry);
    let record: Partial<T>;
    try {
      record = JSON.parse(readFileSync(file, 'utf8')) as Partial<T>;
    } catch {
      removeRecord(file);
      continue;
    }
    if (typeof record.workerPid !== 'number' || !valid(record)) {
      removeRecord(file);
      continue;
    }
    if (record.workerStarted && startTimeOf(record.workerPid) === record.workerStarted) continue;
    found.push({ file, record: record as T });
  }
  return found;
}

/**
 * Removes a record file; one already gone is fine. A plain unlink: `rmSync(file, { force: true })` first
 * stats the file in JavaScript, which costs more than the unlink itself on every step a worker runs.
 */
export function removeRecord(file: string): void {
  try {
    unlinkSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
