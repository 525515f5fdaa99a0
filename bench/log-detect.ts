/**
 * How soon `log.expect` sees a line once it is written: the action watches the external proxy's access log
 * on a simulated lab (its real sshd, over the worker's shared connection), the bench appends a matching
 * line once the watch runs, and times from the write to the action's return.
 */
import { appendFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { ActionContext } from '../activities/action.js';
import { logExpectAction } from '../activities/log-expect.js';
import { loadLab } from '../src/lab/definition.js';
import { LabRuntime } from '../src/lab/runtime.js';
import { SshPool } from '../src/lab/ssh-pool.js';
import { keptLabsDir, runDir, runLabDir } from '../src/state-layout.js';

/** Milliseconds from each write to the action's return. */
export async function measureLogDetection(root: string, samples: number): Promise<number[]> {
  const stateRoot = await mkdtemp(path.join(os.tmpdir(), 'bench-log-'));
  const def = await loadLab('sim', {
    projectRoot: root,
    stateDir: runLabDir(stateRoot, 'bench'),
    labsDir: keptLabsDir(stateRoot),
  });
  await mkdir(def.stateDir, { recursive: true });
  const stateDir = runDir(stateRoot, 'bench');
  const pool = new SshPool();
  const signal = new AbortController().signal;
  const lab = new LabRuntime(def, { stateDir, signal }, pool);
  const quiet = { info() {}, warn() {}, debug() {} };
  const expect = logExpectAction.create({ projectRoot: root, stateRoot });
  try {
    await lab.vagrant(['up', 'external-proxy']);
    const log = lab.machineFile('external-proxy', 'accessLog');
    // The first use asks vagrant for the machine's ssh-config and connects; the samples reuse both.
    await lab.withSsh('external-proxy', (ssh) => ssh.run(['true']));
    const times: number[] = [];
    for (let i = 0; i < samples; i++) {
      const ctx: ActionContext = {
        stateDir,
        log: quiet,
        heartbeat: () => undefined,
        signal,
        run: { workflowId: 'bench', runId: '', stepId: `detect-${i}`, attempt: 1 },
        lab: () => Promise.resolve(lab),
      };
      const watching = expect(
        logExpectAction.input.parse({
          machine: 'external-proxy',
          file: 'accessLog',
          pattern: `^detect-${i}$`,
          within: '10s',
        }),
        ctx,
      );
      // Over the warm connection, tail runs well within this; a line written earlier would still be found
      // (tail reads from the start), only later, so the figure can only err high.
      await new Promise((resolve) => setTimeout(resolve, 300));
      const written = performance.now();
      await appendFile(log, `detect-${i}\n`);
      await watching;
      times.push(performance.now() - written);
    }
    return times;
  } finally {
    pool.close();
    await lab.vagrant(['destroy', '-f'], { check: false });
    await rm(stateRoot, { recursive: true, force: true });
  }
}
