/**
 * Every lab action is idempotent, shown the way a lost completion would show it: each step of
 * tls-passthrough runs twice in a row with the same input on the simulated lab, and the second run leaves
 * the lab as the first did and reports the same outcome. Actions that declare themselves not idempotent
 * (exec) are retried only when a step asks; the registry test holds that rule.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { actions } from '../activities/registry.js';
import { toMs } from '../src/duration.js';
import { loadPlaybookFile } from '../src/playbook/load.js';
import { planSteps, type PlanStep } from '../workflows/types.js';
import { simLab, type SimLab } from './support/sim-lab.js';
import { root } from './support/temporal.js';

let lab: SimLab;
beforeAll(async () => {
  lab = await simLab();
});
afterAll(() => lab?.close());

/**
 * What a step reported, run as Temporal runs it (a retryable failure is tried again, up to the step's
 * attempts, after its retry interval: a probe may fail once while the mesh settles): passed (with a
 * check's evidence) or failed (with its message), without what differs between two runs of anything
 * (times, durations). The output may differ (vm.up `started` the first time, `alreadyRunning` the
 * second): it says what the action did, not what the lab is.
 */
async function outcomeOf(step: PlanStep): Promise<unknown> {
  const action = actions.find((a) => a.name === step.uses)!;
  const { maximumAttempts, initialInterval } = step.options.retry;
  for (let attempt = 1; ; attempt++) {
    try {
      const { evidence } = await lab.run(action, step.with, attempt);
      return { passed: true, evidence: normalize(evidence) };
    } catch (err) {
      const retryable = (err as { nonRetryable?: boolean }).nonRetryable !== true;
      if (!retryable || attempt >= maximumAttempts) {
        return { failed: normalize(err instanceof Error ? err.message : String(err)) };
      }
      await sleep(toMs(initialInterval));
    }
  }
}

function normalize(value: unknown): unknown {
  return JSON.parse(
    JSON.stringify(value ?? null, (key, v: unknown) => {
      if (/^(durationMs|elapsedMs|at|startedAt|endedAt|time|timestamp|tookMs)$/.test(key)) return '<time>';
      if (typeof v === 'string')
        return v
          .replace(/\d{4}-\d\d-\d\dT[\d:.]+Z/g, '<time>')
          .replace(/\b\d+(\.\d+)?\s?(ms|s)\b/g, '<duration>');
      return v;
    }),
  );
}

/** The lab's lasting state: every file of the lab and its stand-ins, logs and call records aside. */
async function labState(): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  const walk = async (dir: string, prefix: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      const full = path.join(dir, entry.name);
      const name = `${prefix}/${entry.name}`;
      if (entry.isDirectory()) await walk(full, name);
      else if (entry.isFile() && !VOLATILE.test(name)) {
        files[name] = createHash('sha256')
          .update(await readFile(full))
          .update(String((await stat(full)).mode))
          .digest('hex');
      }
    }
  };
  await walk(lab.labState, 'lab');
  return files;
}

/** Files that change with every command by nature: logs, call records, pid files. */
const VOLATILE = /\.(log|jsonl|pid)$|access|calls/;

it('runs every step of tls-passthrough twice: same lab, same outcome', async () => {
  const plan = await loadPlaybookFile(path.join(root, 'playbooks', 'tls-passthrough.yaml'), {
    playbooksDir: path.join(root, 'playbooks'),
    actions,
  });
  const failed: string[] = [];
  const states: Record<string, string>[] = [];
  for (const { step } of planSteps(plan)) {
    const first = await outcomeOf(step);
    const after = await labState();
    const second = await outcomeOf(step);
    expect({ step: step.id, outcome: second }).toEqual({ step: step.id, outcome: first });
    expect({ step: step.id, lab: await labState() }).toEqual({ step: step.id, lab: after });
    if ('failed' in (first as object)) failed.push(step.id);
    states.push(after);
  }
  // The snapshots see the lab: its machines, cluster and Istio change it step by step.
  expect(Object.keys(states.at(-1)!).length).toBeGreaterThan(5);
  expect(new Set(states.map((s) => JSON.stringify(s))).size).toBeGreaterThan(3);
  // A probe that runs twice sends its request twice: the external proxy logs two tunnels per host, and the
  // count checks that follow (count: 1) see both. That is the lab telling the truth, not a broken action;
  // a real run reaches it only when Temporal retries a probe, and its report shows the probe's attempts.
  expect(failed).toEqual(['proxy-saw-a', 'proxy-saw-b']);
}, 600_000);
