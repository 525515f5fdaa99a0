/**
 * A lab of kind existing whose cluster is a simulated lab's (its kubeconfig, and the stand-in kubectl and
 * istioctl answering for it), as a user's lab file points at their own cluster: for tests of what actions
 * do on such a lab. Its runs are `workflowId`'s, so that its state is not the simulated lab's.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { stringify } from 'yaml';
import type { ActionDefinition } from '../../activities/action.js';
import { toActivity } from '../../activities/index.js';
import { kubeconfigFetchAction } from '../../activities/kubeconfig-fetch.js';
import type { StepOutcome } from '../../workflows/types.js';
import type { SimLab } from './sim-lab.js';
import { root } from './temporal.js';

export interface ExistingLab {
  file: string;
  /** Runs an action's activity on this lab, as run `workflowId` would. */
  run(action: ActionDefinition, input: unknown): Promise<StepOutcome>;
}

/** Writes lab file `<name>.yaml` (`fields` over the defaults) and copies the cluster's kubeconfig into its run. */
export async function existingLabOn(
  lab: SimLab,
  name: string,
  fields: Record<string, unknown>,
  workflowId = name,
): Promise<ExistingLab> {
  const file = path.join(lab.stateRoot, `${name}.yaml`);
  await writeFile(
    file,
    stringify({
      name,
      kind: 'existing',
      tools: { kubectl: lab.def.tools.kubectl, istioctl: lab.def.tools.istioctl },
      env: {
        TUNNEL_LAB_CONFIG: lab.def.file,
        TUNNEL_LAB_STATE_DIR: lab.labState,
        TUNNEL_LAB_SIM_STATE: lab.simState,
      },
      cluster: { kubeconfig: path.join(lab.labState, 'kubeconfig') },
      network: { proxyPort: 3128, appPort: 443 },
      ...fields,
    }),
  );
  const run = (action: ActionDefinition, input: unknown) =>
    new MockActivityEnvironment(
      { workflowExecution: { workflowId, runId: 'r' } },
      { logger: new DefaultLogger('ERROR') },
    ).run<[unknown, { lab: string }], StepOutcome, ReturnType<typeof toActivity>>(
      toActivity(action, { projectRoot: root, stateRoot: lab.stateRoot }),
      input,
      { lab: file },
    );
  await run(kubeconfigFetchAction, {});
  return { file, run };
}

/** The error a promise fails with (undefined when it does not fail). */
export function failure(promise: Promise<unknown>): Promise<(Error & { type?: string }) | undefined> {
  return promise.then(
    () => undefined,
    (e: unknown) => e as Error & { type?: string },
  );
}

/**
 * The YAML of a namespace `corp-proxy` and a Deployment `corp-proxy` in it: a forward proxy that runs in the
 * cluster. The simulated cluster hands `output` (a file on one of its machines) out as the log of the
 * container `output.container` (sim/kubectl/logs.ts), as a container runtime hands out what it wrote.
 */
export function proxyPodManifest(
  output: { container: string; machine: string; path: string },
  containers: { name: string; image: string }[] = [
    { name: output.container, image: 'envoyproxy/envoy:v1.36.4' },
  ],
): string {
  const docs = [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'corp-proxy' } },
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'corp-proxy', namespace: 'corp-proxy' },
      spec: {
        selector: { matchLabels: { app: 'corp-proxy' } },
        template: {
          metadata: {
            labels: { app: 'corp-proxy' },
            annotations: {
              'sim.tunnel-lab.io/stdout': `${output.container}=${output.machine}:${output.path}`,
            },
          },
          spec: { containers },
        },
      },
    },
  ];
  return docs.map((doc) => stringify(doc)).join('---\n');
}
