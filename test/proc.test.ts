/** src/proc.ts: what /proc says of a process, as the orphan records and the bench read it. */
import { execFileSync } from 'node:child_process';
import { procStat, startTimeOf } from '../src/proc.js';

/** Busy until this process has used `seconds` more of CPU time, however loaded the machine is. */
function spin(seconds: number): void {
  const start = process.cpuUsage();
  for (;;) {
    const used = process.cpuUsage(start);
    if (used.user + used.system >= seconds * 1e6) return;
  }
}

describe('procStat', () => {
  it('reads the parent and the start time, and nothing of a process that is not there', () => {
    const own = procStat(process.pid)!;
    expect(own.parent).toBe(process.ppid);
    expect(own.started).toMatch(/^\d+$/);
    expect(startTimeOf(process.pid)).toBe(own.started);
    expect(procStat(2 ** 22 + 1)).toBeUndefined();
  });

  it('counts the CPU time of the process and of the children it waited for', () => {
    const before = procStat(process.pid)!;
    spin(0.3);
    const spun = procStat(process.pid)!;
    execFileSync(process.execPath, ['-e', `(${spin.toString()})(0.3)`]);
    const after = procStat(process.pid)!;
    // Ticks are hundredths of a second, and 0.3 s of CPU is 30 of them, give or take one.
    expect(spun.cpuSeconds - before.cpuSeconds).toBeGreaterThanOrEqual(0.28);
    expect(spun.childrenCpuSeconds).toBe(before.childrenCpuSeconds);
    // While the child ran this process waited: the child's time is counted apart from its own.
    expect(after.childrenCpuSeconds - spun.childrenCpuSeconds).toBeGreaterThanOrEqual(0.28);
    expect(after.cpuSeconds - spun.cpuSeconds).toBeLessThan(0.2);
  });
});
