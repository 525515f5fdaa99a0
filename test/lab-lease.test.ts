/**
 * One run per lab at a time: runs that drive the same lab (here kept simulated labs, whose machines
 * outlive runs as real VMs do) take its lease before their first step and hold it until their `finally`
 * steps are over, so their steps never interleave; runs on different labs, or on labs of their own, do not
 * wait for each other. A waiting run says which lab it waits for and which run holds it.
 */
import os from 'node:os';
import path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { loadLab } from '../src/lab/definition.js';
import { labIdentity } from '../src/lab/lease.js';
import { keptLabsDir, runLabDir } from '../src/state-layout.js';
import type { ScenarioResult, StepRecord } from '../workflows/types.js';
import {
  eventually,
  outcome,
  root,
  start,
  writePlaybook,
  type TestLab,
  useWorker,
} from './support/temporal.js';
import { simLabVariant } from './support/variants.js';

let lab: TestLab;
useWorker('lease', (created) => (lab = created));

/** A lab step (the run takes its lab), then `seconds` of holding it, and a `finally` step. */
function leasePlaybook(seconds: number): Promise<string> {
  return writePlaybook(
    'lease',
    [
      'name: lease',
      'steps:',
      '  - { id: tools, uses: tools.check, with: { tools: [vagrant] } }',
      `  - { id: hold, uses: exec, with: { command: [sleep, '${seconds}'] } }`,
      'finally:',
      '  - { id: after, uses: exec, with: { command: ["true"] } }',
      '',
    ].join('\n'),
  );
}

/** labs/sim.yaml as a kept lab named `name` (its machines live under the state root's labs/<name>/). */
function keptLab(name: string): Promise<string> {
  return simLabVariant(lab.stateRoot, name, (def) => {
    def.lifetime = 'lab';
  });
}

/** When a run's first step started and its last step ended, from its result. */
function span(result: ScenarioResult): { from: number; to: number } {
  const ran = result.steps.filter((s): s is StepRecord & { startedAt: string } => s.startedAt !== undefined);
  const from = Math.min(...ran.map((s) => Date.parse(s.startedAt)));
  const to = Math.max(...ran.map((s) => Date.parse(s.startedAt) + (s.durationMs ?? 0)));
  return { from, to };
}

const progress = (handle: WorkflowHandle) => handle.query<ScenarioResult>('progress');

/** The first of `handles` whose progress shows it waiting for its lab, with that progress. */
async function waiter(handles: WorkflowHandle[]): Promise<{ handle: WorkflowHandle; state: ScenarioResult }> {
  return eventually(async () => {
    for (const handle of handles) {
      const state = await progress(handle).catch(() => undefined);
      if (state?.waitingForLab) return { handle, state };
    }
    return undefined;
  });
}

describe('the lab lease', () => {
  it('runs two runs on the same lab one after the other; the waiting one names the lab and its holder', async () => {
    const file = await keptLab('lease-shared');
    const playbook = await leasePlaybook(2);
    const [a, b] = await Promise.all([
      start(lab, { playbook, lab: file }),
      start(lab, { playbook, lab: file }),
    ]);
    const { handle, state } = await waiter([a, b]);
    const holder = handle === a ? b : a;
    expect(state.waitingForLab).toEqual({ lab: 'lease-shared', heldBy: holder.workflowId });
    // Nothing of the waiting run has started.
    expect(state.steps.map((s) => s.status)).toEqual(['pending', 'pending', 'pending']);

    const [first, second] = await Promise.all([outcome(holder), outcome(handle)]);
    expect([first.status, second.status]).toEqual(['passed', 'passed']);
    expect(second.waitingForLab).toBeUndefined();
    // The second run's first step started after the first run's `finally` ended.
    expect(span(second).from).toBeGreaterThanOrEqual(span(first).to);

    // The lease ended as released (completed), and was the holder's child.
    const def = await loadLab(file, {
      projectRoot: root,
      stateDir: runLabDir(lab.stateRoot, holder.workflowId),
      labsDir: keptLabsDir(lab.stateRoot),
    });
    const identity = labIdentity(def, runLabDir(lab.stateRoot, holder.workflowId), os.hostname());
    expect(identity.leaseId).toBeDefined();
    expect(identity.where).toBe(`${os.hostname()}:${path.join(lab.stateRoot, 'labs', 'lease-shared')}`);
    const lease = await lab.client.workflow.getHandle(identity.leaseId!).describe();
    expect(lease.status.name).toBe('COMPLETED');
    expect(lease.parentExecution?.workflowId).toBe(handle.workflowId);
  }, 120_000);

  it('lets runs on different labs, and on labs of their own, run at the same time', async () => {
    const playbook = await leasePlaybook(3);
    const own = path.join(root, 'labs', 'sim.yaml');
    const runs = await Promise.all([
      start(lab, { playbook, lab: await keptLab('lease-x') }),
      start(lab, { playbook, lab: await keptLab('lease-y') }),
      start(lab, { playbook, lab: own }),
      start(lab, { playbook, lab: own }),
    ]);
    const results = await Promise.all(runs.map(outcome));
    expect(results.map((r) => r.status)).toEqual(['passed', 'passed', 'passed', 'passed']);
    const spans = results.map(span);
    // Every run started before any other had ended: they overlapped.
    expect(Math.max(...spans.map((s) => s.from))).toBeLessThan(Math.min(...spans.map((s) => s.to)));
  }, 120_000);

  it('ends a run cancelled while it waits without running any of its steps, its finally steps included', async () => {
    const file = await keptLab('lease-cancel');
    const playbook = await leasePlaybook(4);
    const holder = await start(lab, { playbook, lab: file });
    await eventually(async () => ((await progress(holder)).steps[0]?.status === 'passed' ? true : undefined));
    const waiting = await start(lab, { playbook, lab: file });
    await eventually(async () => ((await progress(waiting)).waitingForLab ? true : undefined));
    await waiting.cancel();

    const cancelled = await outcome(waiting).catch(() => undefined);
    const description = await waiting.describe();
    expect(description.status.name).toBe('CANCELLED');
    if (cancelled) expect(cancelled.steps.every((s) => s.startedAt === undefined)).toBe(true);
    const history = await waiting.fetchHistory();
    const scheduled = (history.events ?? []).flatMap((e) =>
      e.activityTaskScheduledEventAttributes
        ? [e.activityTaskScheduledEventAttributes.activityType?.name]
        : [],
    );
    // Only the engine's own activities ran: no step, and no finally step, touched the lab.
    expect(
      scheduled.filter(
        (name) => !['loadPlaybook', 'labIdentity', 'labHolder', 'awaitLabRelease'].includes(name!),
      ),
    ).toEqual([]);
    expect((await outcome(holder)).status).toBe('passed');
  }, 120_000);

  it('frees the lab when its holder is terminated, and the waiting run then takes it', async () => {
    const file = await keptLab('lease-terminated');
    const holder = await start(lab, { playbook: await leasePlaybook(60), lab: file });
    await eventually(async () => ((await progress(holder)).steps[0]?.status === 'passed' ? true : undefined));
    const waiting = await start(lab, { playbook: await leasePlaybook(1), lab: file });
    const { state } = await waiter([waiting]);
    expect(state.waitingForLab?.heldBy).toBe(holder.workflowId);
    await holder.terminate('the test ends the holder');
    const result = await outcome(waiting);
    expect(result.status).toBe('passed');
  }, 120_000);
});
