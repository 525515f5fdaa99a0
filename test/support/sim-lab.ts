/**
 * A simulated lab for one test file: its own state root, the lab definition as the activities load it
 * (workflowId `test`, so the lab state is `<stateRoot>/runs/test/lab`), a way to run its `vagrant`, and
 * cleanup that destroys the machines (stopping their sshd and nginx) before removing the folder.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { parse, stringify } from 'yaml';
import type { ActionDefinition } from '../../activities/action.js';
import { toActivity } from '../../activities/index.js';
import { loadLab, type LabDefinition } from '../../src/lab/definition.js';
import { keptLabsDir, runDir, runLabDir } from '../../src/state-layout.js';
import { PodNames } from '../../src/lab/pod-names.js';
import { LabRuntime, type ToolResult } from '../../src/lab/runtime.js';
import type { StepOutcome } from '../../workflows/types.js';
import { root } from './temporal.js';

/** A lab file as YAML data, for tests to edit. */
export interface LabYaml {
  tools: Record<string, string>;
  vagrant: Record<string, unknown>;
  sim: { latency?: Record<string, string>; faults?: unknown[]; configDelay?: string };
  [key: string]: unknown;
}

/** One simulated lab and the handles a test needs. */
export interface SimLab {
  stateRoot: string;
  /** What `meta.lab` says: `sim`, or the path of an edited copy. */
  labRef: string;
  labState: string;
  /** The stand-ins' own state folder (TUNNEL_LAB_SIM_STATE). */
  simState: string;
  def: LabDefinition;
  runtime: LabRuntime;
  /** The pod names its steps keep between them, as a worker does. */
  pods: PodNames;
  /** Runs the lab's vagrant; never throws on a non-zero exit. */
  vagrant(args: string[]): Promise<ToolResult>;
  /** Runs an action's activity against this lab, as the worker would. */
  run(action: ActionDefinition, input: unknown, attempt?: number): Promise<StepOutcome>;
  close(): Promise<void>;
}

/**
 * Sets up a simulated lab (`name`: labs/sim.yaml, or labs/local.yaml with its real control plane). `edit`
 * changes a copy of the lab file (tool paths made absolute), e.g. to add faults, a box or a fake tool under
 * `stateRoot`; the copy then lives in the state root.
 */
export async function simLab(
  edit?: (lab: LabYaml, stateRoot: string) => void,
  name: 'sim' | 'local' = 'sim',
  /** The run whose lab it is: its folder is named after it (see state-layout.ts). */
  runId = 'test',
): Promise<SimLab> {
  const stateRoot = await mkdtemp(path.join(os.tmpdir(), 'tunnel-lab-sim-'));
  let labRef: string = name;
  if (edit) {
    const source = path.join(root, 'labs', `${name}.yaml`);
    const lab = parse(await readFile(source, 'utf8')) as LabYaml;
    for (const [name, tool] of Object.entries(lab.tools)) {
      if (tool.includes('/')) lab.tools[name] = path.resolve(path.dirname(source), tool);
    }
    edit(lab, stateRoot);
    await mkdir(path.join(stateRoot, 'labs'), { recursive: true });
    labRef = path.join(stateRoot, 'labs', `${name}.yaml`);
    await writeFile(labRef, stringify(lab));
  }
  const def = await loadLab(labRef, {
    projectRoot: root,
    stateDir: runLabDir(stateRoot, runId),
    labsDir: keptLabsDir(stateRoot),
  });
  const labState = def.stateDir;
  // The sim lab's vagrant runs in the lab state folder, which the first action creates.
  await mkdir(labState, { recursive: true });
  const runtime = new LabRuntime(def, {
    stateDir: runDir(stateRoot, runId),
    signal: new AbortController().signal,
    heartbeat: () => undefined,
  });
  const pods = new PodNames();
  const deps = { projectRoot: root, stateRoot, pods };
  return {
    stateRoot,
    labRef,
    labState,
    simState: def.env.TUNNEL_LAB_SIM_STATE!,
    def,
    runtime,
    pods,
    vagrant: (args) => runtime.vagrant(args, { check: false }),
    run: (action, input, attempt = 1) =>
      new MockActivityEnvironment({ attempt }, { logger: new DefaultLogger('ERROR') }).run(
        toActivity(action, deps),
        input,
        { lab: labRef },
      ),
    close: async () => {
      await runtime.vagrant(['destroy', '-f'], { check: false });
      await rm(stateRoot, { recursive: true, force: true });
    },
  };
}

/** The vagrant invocations the lab's stand-in recorded (`<sim state>/vagrant-calls.jsonl`), in order. */
export async function vagrantCalls(lab: Pick<SimLab, 'simState'>): Promise<{ at: string; argv: string[] }[]> {
  const text = await readFile(path.join(lab.simState, 'vagrant-calls.jsonl'), 'utf8');
  return text
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { at: string; argv: string[] });
}
