import { z } from 'zod';
import {
  keepsObjects,
  ownEgressGateway,
  SHARED_EGRESS_GATEWAY,
  type LabDefinitionData,
} from '../src/lab/definition.js';
import { labelValue, ownedSelector, RUN_LABEL, type RunRef } from '../src/lab/ownership.js';
import { defineAction, KUBECTL_POLICY, notApplicable } from './action.js';

/**
 * The kinds whose objects decide where a pod's traffic goes: what an earlier run's ServiceEntries,
 * routes, tunnel filter and namespace policy (a Sidecar resource) would change in this one. Workloads, Services, ConfigMaps and Secrets are
 * re-applied in place by the scenarios that need them, so their pods are not restarted for nothing.
 */
export const ISTIO_ROUTING_KINDS = [
  'serviceentries.networking.istio.io',
  'virtualservices.networking.istio.io',
  'destinationrules.networking.istio.io',
  'gateways.networking.istio.io',
  'envoyfilters.networking.istio.io',
  'sidecars.networking.istio.io',
];

const RESOURCE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Input of manifest.prune. */
export const manifestPruneInput = z
  .object({
    kinds: z
      .array(z.string().regex(RESOURCE, 'must be a resource type such as serviceentries.networking.istio.io'))
      .min(1)
      .optional()
      .describe(
        "Resource types to prune (plural.group); by default Istio's routing kinds, and with runs: this " +
          'every kind a scenario applies (workloads, Services, ConfigMaps and Secrets too).',
      ),
    runs: z
      .enum(['earlier', 'this', 'all'])
      .default('earlier')
      .describe(
        "Whose objects: earlier runs' (a clean slate before a scenario); this run's (a finally step that " +
          'leaves nothing behind, on a lab whose runs do not keep their objects: keepObjects); all of them.',
      ),
  })
  .strict();

/** Every kind a scenario applies: what a run that leaves nothing behind removes at its end. */
export const SCENARIO_KINDS = [
  ...ISTIO_ROUTING_KINDS,
  'deployments.apps',
  'services',
  'serviceaccounts',
  'configmaps',
  'secrets',
  // Last: a namespace the run created (kube.namespace), with whatever is left in it.
  'namespaces',
];

/** Output of manifest.prune. */
export interface ManifestPruneOutput {
  /** The label selector the objects were deleted by. */
  selector: string;
  /** What kubectl printed, one line per deleted object. */
  deleted: string[];
}

/** Deletes, by label, what earlier runs applied to the cluster (all namespaces, or the lab's own). */
export const manifestPruneAction = defineAction({
  name: 'manifest.prune',
  description:
    'Delete what earlier runs applied (objects labelled app.kubernetes.io/managed-by=tunnel-lab with ' +
    "another tunnel-lab.io/run), so that a scenario on a kept cluster starts from a known state: by default Istio's routing config.",
  input: manifestPruneInput,
  // Deleting by label across every namespace can take longer than one call.
  policy: { ...KUBECTL_POLICY, timeout: '2m' },
  idempotent: true,
  summary: (input) =>
    `manifest.prune ${RUNS_TEXT[input.runs]}: ${kindsOf(input)
      .map((k) => k.split('.')[0])
      .join(', ')}`,
  examples: [
    {
      description: 'Start from a clean slate: remove the Istio routing earlier runs left',
      yaml: 'id: clean-slate\nuses: manifest.prune',
    },
    {
      description: "In finally: leave nothing of this run's behind (on a lab that says keepObjects: false)",
      yaml: 'id: leave-nothing\nuses: manifest.prune\nwith: { runs: this }',
    },
  ],
  changes: (input, { lab }) =>
    input.runs === 'this' && keepsObjects(lab)
      ? []
      : [
          `delete ${kindsOf(input)
            .map((k) => k.split('.')[0])
            .join(', ')} labelled ${ownedSelector()} ` + `by ${RUNS_TEXT[input.runs]}, ${placesText(lab)}`,
        ],
  create: () => async (input, ctx) => {
    const lab = await ctx.lab();
    if (input.runs === 'this' && keepsObjects(lab.def)) {
      return notApplicable(
        `the lab ${lab.def.name} keeps what a run applied for a look afterwards (keepObjects), and the next run's clean slate removes it`,
      );
    }
    const selector = selectorFor(input.runs, ctx.run);
    // The pods kept by name may go with what is deleted: later steps pick theirs again.
    lab.forgetPods();
    const kinds = kindsOf(input);
    const places = prunePlaces(lab.def);
    const deleted: string[] = [];
    for (const [i, namespace] of places.entries()) {
      // Namespaces are cluster-wide: deleted once, by the last call, after what is in them.
      const last = i === places.length - 1;
      const these = last ? kinds : kinds.filter((k) => k !== 'namespaces');
      const where = namespace ? ['-n', namespace] : ['--all-namespaces'];
      const { stdout } = await lab.kubectl(
        ['delete', these.join(','), ...where, '-l', selector, '--ignore-not-found'],
        { timeoutMs: 90_000 },
      );
      deleted.push(
        ...stdout
          .split('\n')
          .map((line) => line.trim())
          .filter(Boolean),
      );
    }
    const output: ManifestPruneOutput = { selector, deleted };
    return output;
  },
});

/**
 * Where a lab's runs put what they apply, so where a step looks (undefined: every namespace). A lab whose
 * runs keep to their namespace (their own egress gateway): only there, since other labs' runs may be under
 * way in theirs. A cluster that is not the tool's, with the shared gateway: istio-system and the lab's
 * namespace. A Vagrant lab, the tool's own cluster: everywhere, so that what runs of another namespace left
 * goes too.
 */
function prunePlaces(
  def: Pick<LabDefinitionData, 'egressGateway' | 'namespace' | 'kind'>,
): (string | undefined)[] {
  if (ownEgressGateway(def)) return [def.namespace];
  if (def.kind !== 'existing') return [undefined];
  return [...new Set([SHARED_EGRESS_GATEWAY.namespace, def.namespace])];
}

function placesText(def: Pick<LabDefinitionData, 'egressGateway' | 'namespace' | 'kind'>): string {
  const places = prunePlaces(def);
  return places[0] === undefined ? 'in all namespaces' : `in ${places.join(' and ')}`;
}

const RUNS_TEXT = { earlier: 'earlier runs', this: 'this run', all: 'every run' } as const;

/** The label selector of the objects of `runs`, seen from `run`. */
function selectorFor(runs: 'earlier' | 'this' | 'all', run: RunRef): string {
  if (runs === 'all') return ownedSelector();
  if (runs === 'earlier') return ownedSelector(run);
  return `${ownedSelector()},${RUN_LABEL}=${labelValue(run.workflowId)}`;
}

/** The kinds a step prunes: its own, or its runs' default. */
function kindsOf(input: z.output<typeof manifestPruneInput>): string[] {
  return input.kinds ?? (input.runs === 'this' ? SCENARIO_KINDS : ISTIO_ROUTING_KINDS);
}
