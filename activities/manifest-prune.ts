import { z } from 'zod';
import { ownedSelector } from '../src/lab/ownership.js';
import { defineAction } from './action.js';

/**
 * The kinds whose objects decide where a pod's traffic goes: what an earlier run's ServiceEntries,
 * routes and tunnel filter would change in this one. Workloads, Services, ConfigMaps and Secrets are
 * re-applied in place by the scenarios that need them, so their pods are not restarted for nothing.
 */
export const ISTIO_ROUTING_KINDS = [
  'serviceentries.networking.istio.io',
  'virtualservices.networking.istio.io',
  'destinationrules.networking.istio.io',
  'gateways.networking.istio.io',
  'envoyfilters.networking.istio.io',
];

const RESOURCE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Input of manifest.prune. */
export const manifestPruneInput = z
  .object({
    kinds: z
      .array(z.string().regex(RESOURCE, 'must be a resource type such as serviceentries.networking.istio.io'))
      .min(1)
      .default(ISTIO_ROUTING_KINDS)
      .describe("Resource types to prune (plural.group); Istio's routing kinds by default."),
    thisRun: z
      .boolean()
      .default(false)
      .describe('Also delete what this run applied (for a finally step that leaves the cluster clean).'),
  })
  .strict();

/** Output of manifest.prune. */
export interface ManifestPruneOutput {
  /** The label selector the objects were deleted by. */
  selector: string;
  /** What kubectl printed, one line per deleted object. */
  deleted: string[];
}

/** Deletes, by label, what earlier runs applied to the cluster (all namespaces). */
export const manifestPruneAction = defineAction({
  name: 'manifest.prune',
  description:
    'Delete what earlier runs applied (objects labelled app.kubernetes.io/managed-by=tunnel-lab with ' +
    "another tunnel-lab.io/run), so that a scenario on a kept cluster starts from a known state: by default Istio's routing config.",
  input: manifestPruneInput,
  policy: {
    timeout: '2m',
    maxTimeout: '10m',
    heartbeatTimeout: '30s',
    retry: { attempts: 5, initialInterval: '2s', backoff: 2, maxInterval: '30s' },
    maxAttempts: 20,
  },
  idempotent: true,
  summary: (input) =>
    `manifest.prune ${input.thisRun ? 'every run' : 'earlier runs'}: ${input.kinds.map((k) => k.split('.')[0]).join(', ')}`,
  examples: [
    {
      description: 'Start from a clean slate: remove the Istio routing earlier runs left',
      yaml: 'id: clean-slate\nuses: manifest.prune',
    },
    {
      description: "Leave no tunnel-lab routing behind, this run's included",
      yaml: 'id: clean-up\nuses: manifest.prune\nwith: { thisRun: true }',
    },
  ],
  changes: (input) => [
    `delete ${input.kinds.map((k) => k.split('.')[0]).join(', ')} labelled ${ownedSelector()}` +
      `${input.thisRun ? '' : ' by earlier runs'}, in all namespaces`,
  ],
  create: () => async (input, ctx) => {
    const lab = await ctx.lab();
    const selector = ownedSelector(input.thisRun ? undefined : ctx.run);
    // The pods kept by name may go with what is deleted: later steps pick theirs again.
    lab.forgetPods();
    const { stdout } = await lab.kubectl(
      ['delete', input.kinds.join(','), '--all-namespaces', '-l', selector, '--ignore-not-found'],
      { timeoutMs: 90_000 },
    );
    const output: ManifestPruneOutput = {
      selector,
      deleted: stdout
        .split('\n')
        .map((line) => line.trim())
        .filter(Boolean),
    };
    return output;
  },
});
