/** What Linux's /proc says about a process: enough to tell a live process from a later one with its pid. */
import { readFileSync } from 'node:fs';

export interface ProcStat {
  /** The parent's pid (field 4 of /proc/<pid>/stat). */
  parent: number;
  /** When the process started, in clock ticks after boot (field 22), as text. */
  started: string;
}

/** The parent and start time of a process; undefined when there is no such process. */
export function procStat(pid: number): ProcStat | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may hold spaces; the fields after it are plain.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { parent: Number(fields[1]), started: fields[19] ?? '' };
}

/** When a process started (see ProcStat.started); undefined when there is no such process. */
export function startTimeOf(pid: number): string | undefined {
  return procStat(pid)?.started;
}
