/**
 * The floor under the engine's overhead: a workflow that runs the same `exec` activity the no-op
 * playbook's steps run, one after another, and nothing else (no plan, no records, no search attributes,
 * no details). The bench bundles it on its own; it is no part of the product.
 */
import { proxyActivities } from '@temporalio/workflow';

type Exec = (input: { command: string[] }) => Promise<{ output: { durationMs: number } }>;

const { exec } = proxyActivities<{ exec: Exec }>({ startToCloseTimeout: '1m' });

/** Runs `steps` no-op commands; returns each one's own time (ms). */
export async function bareSteps(steps: number): Promise<number[]> {
  const own: number[] = [];
  for (let i = 0; i < steps; i++) own.push((await exec({ command: ['true'] })).output.durationMs);
  return own;
}
