/** Copies of the shipped playbooks with steps changed, for the variants that must fail. */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import type { ScenarioResult } from '../../workflows/types.js';
import { root, writePlaybook } from './temporal.js';

export interface Step {
  id: string;
  uses?: string;
  with?: Record<string, unknown>;
  retry?: { attempts: number };
  parallel?: Step[];
}

/**
 * A copy of labs/sim.yaml with `edit` applied (its tool paths made absolute), written into `dir`; returns
 * the copy's path, for a run's `lab`.
 */
export async function simLabVariant(
  dir: string,
  name: string,
  edit: (lab: Record<string, unknown> & { sim: Record<string, unknown> }) => void,
): Promise<string> {
  const source = path.join(root, 'labs', 'sim.yaml');
  const lab = parse(await readFile(source, 'utf8')) as Record<string, unknown> & {
    tools: Record<string, string>;
    sim: Record<string, unknown>;
  };
  for (const [tool, file] of Object.entries(lab.tools))
    lab.tools[tool] = path.resolve(path.dirname(source), file);
  lab.name = name;
  edit(lab);
  const file = path.join(dir, `${name}.yaml`);
  await writeFile(file, stringify(lab));
  return file;
}

/** `steps` with `edit` applied to every step, those inside parallel groups too. */
export function mapSteps(steps: Step[], edit: (step: Step) => Step): Step[] {
  return steps.map((s) => edit(s.parallel ? { ...s, parallel: mapSteps(s.parallel, edit) } : s));
}

/** `steps` without the steps named `ids`, those inside parallel groups too; a group left empty goes as well. */
export function dropSteps(steps: Step[], ...ids: string[]): Step[] {
  return steps.flatMap((s) => {
    if (ids.includes(s.id)) return [];
    if (!s.parallel) return [s];
    const parallel = dropSteps(s.parallel, ...ids);
    return parallel.length > 0 ? [{ ...s, parallel }] : [];
  });
}

/** A copy of a shipped playbook with `edit` applied to its steps; returns the copy's path. */
export async function variant(name: string, edit: (steps: Step[]) => Step[]): Promise<string> {
  const doc = parse(await readFile(path.join(root, 'playbooks', `${name}.yaml`), 'utf8')) as {
    name: string;
    steps: Step[];
  };
  doc.steps = edit(doc.steps);
  return writePlaybook(name, stringify(doc));
}

/**
 * tls-passthrough whose tunnel EnvoyFilter selects a gateway that does not exist (`istio: corp-egress`),
 * without the preflight that would catch it, and with one short wait for the tunnel.
 */
export function tunnelForAnotherGateway(steps: Step[]): Step[] {
  return dropSteps(steps, 'preflight').map((s) =>
    s.id === 'tunnel'
      ? {
          ...s,
          with: {
            ...s.with,
            values: {
              ...(s.with!.values as object),
              egressGateway: { selector: { istio: 'corp-egress' } },
            },
          },
        }
      : s.id === 'tunnel-ready'
        ? { ...s, retry: { attempts: 1 }, with: { ...s.with, within: '4s' } }
        : s,
  );
}

/** How tunnelForAnotherGateway fails on any lab: the wait for the tunnel gives up, nothing after it runs. */
export function expectNoTunnelOnTheGateway(result: ScenarioResult): void {
  expect(result.status).toBe('failed');
  expect(Object.fromEntries(result.steps.map((s) => [s.id, s.status]))).toMatchObject({
    tunnel: 'passed',
    'tunnel-ready': 'failed',
    'tunnelled-a': 'pending',
    teardown: 'passed',
  });
  expect(result.error).toMatch(
    /step tunnel-ready: ExpectationError: .*the gateway has no tunnel to www\.google\.com:443/,
  );
}
