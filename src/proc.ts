/** What Linux's /proc says about a process: enough to tell a live process from a later one with its pid. */
import { readFileSync } from 'node:fs';

export interface ProcStat {
  /** The parent's pid (field 4 of /proc/<pid>/stat). */
  parent: number;
  /** When the process started, in clock ticks after boot (field 22), as text. */
  started: string;
  /** CPU time it spent, user and system, in seconds (fields 14 and 15). */
  cpuSeconds: number;
  /** CPU time of the children it waited for, user and system, in seconds (fields 16 and 17). */
  childrenCpuSeconds: number;
}

/** Clock ticks per second of the times in /proc/<pid>/stat and /proc/stat (USER_HZ, 100 on Linux). */
export const TICKS_PER_SECOND = 100;

/** The parent, start time and CPU times of a process; undefined when there is no such process. */
export function procStat(pid: number): ProcStat | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may hold spaces; the fields after it are plain.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = (i: number, j: number) => (Number(fields[i]) + Number(fields[j])) / TICKS_PER_SECOND;
  return {
    parent: Number(fields[1]),
    started: fields[19] ?? '',
    cpuSeconds: ticks(11, 12),
    childrenCpuSeconds: ticks(13, 14),
  };
}

/** When a process started (see ProcStat.started); undefined when there is no such process. */
export function startTimeOf(pid: number): string | undefined {
  return procStat(pid)?.started;
}
