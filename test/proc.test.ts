/** src/proc.ts: what /proc says of a process, as the orphan records and the bench read it. */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { procStat, startTimeOf } from '../src/proc.js';

/** Busy until this process has used `seconds` more of CPU time, however loaded the machine is. */
function spin(seconds: number): void {
  const start = process.cpuUsage();
  for (;;) {
    const used = process.cpuUsage(start);
    if (used.user + used.system >= seconds * 1e6) return;
  }
}

/**
 * A fresh Node process that, at each line on its stdin, does its next task and then prints a line:
 * first it spins 0.3 s of CPU itself, then it waits for a child that spins 0.3 s.
 * A fresh process, because the test's own process may hold threads of earlier suites that use CPU
 * while it waits.
 */
const STEPS = `
  const { execFileSync } = require('node:child_process');
  const spin = ${spin.toString()};
  const tasks = [
    () => spin(0.3),
    () => execFileSync(process.execPath, ['-e', '(' + spin.toString() + ')(0.3)']),
  ];
  require('node:readline').createInterface({ input: process.stdin }).on('line', () => {
    tasks.shift()();
    console.log('done');
  });
  console.log('ready');
`;

describe('procStat', () => {
  it('reads the parent and the start time, and nothing of a process that is not there', () => {
    const own = procStat(process.pid)!;
    expect(own.parent).toBe(process.ppid);
    expect(own.started).toMatch(/^\d+$/);
    expect(startTimeOf(process.pid)).toBe(own.started);
    expect(procStat(2 ** 22 + 1)).toBeUndefined();
  });

  it('counts the CPU time of the process and of the children it waited for', async () => {
    const child = spawn(process.execPath, ['-e', STEPS], { stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
      const next = async () => {
        expect((await lines.next()).value).toMatch(/^(ready|done)$/);
        return procStat(child.pid!)!;
      };
      const before = await next();
      child.stdin.write('\n');
      const spun = await next();
      child.stdin.write('\n');
      const after = await next();
      // Ticks are hundredths of a second, and 0.3 s of CPU is 30 of them, give or take one.
      expect(spun.cpuSeconds - before.cpuSeconds).toBeGreaterThanOrEqual(0.28);
      expect(spun.childrenCpuSeconds).toBe(before.childrenCpuSeconds);
      // While the child ran the process waited: the child's time is counted apart from its own.
      expect(after.childrenCpuSeconds - spun.childrenCpuSeconds).toBeGreaterThanOrEqual(0.28);
      expect(after.cpuSeconds - spun.cpuSeconds).toBeLessThan(0.2);
    } finally {
      child.kill();
    }
  });
});
