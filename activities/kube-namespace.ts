import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { stringify } from 'yaml';
import { z } from 'zod';
import { LabConfigError } from '../src/errors.js';
import { injectionLabel, type LabDefinitionData } from '../src/lab/definition.js';
import { K8S_NAME, labelKeyInput, labelValueInput } from '../src/lab/kube-names.js';
import { MANAGED_BY_LABEL, MANAGER, ownerLabels } from '../src/lab/ownership.js';
import type { LabRuntime } from '../src/lab/runtime.js';
import { defineAction, KUBECTL_POLICY } from './action.js';

/** The Sidecar resource a step applies for the namespace's outbound traffic policy. */
export const POLICY_SIDECAR = 'tunnel-lab';

/** Input of kube.namespace. */
export const kubeNamespaceInput = z
  .object({
    name: z
      .string()
      .regex(K8S_NAME, 'must be a namespace name: lowercase letters, digits and -')
      .optional()
      .describe("The namespace; the lab's `namespace` by default."),
    injection: z
      .boolean()
      .default(false)
      .describe(
        'Ask Istio to inject sidecars into the pods of the namespace: the label istio-injection=enabled, or ' +
          "istio.io/rev=<revision> when the lab's Istio is a revision (istio.revision in the lab file).",
      ),
    labels: z
      .record(labelKeyInput, labelValueInput)
      .default({})
      .describe('More labels the namespace must carry.'),
    outboundTrafficPolicy: z
      .enum(['REGISTRY_ONLY', 'ALLOW_ANY'])
      .optional()
      .describe(
        `The outbound traffic policy of the namespace's sidecars, set by a Sidecar resource (${POLICY_SIDECAR}) ` +
          "in the namespace instead of the mesh-wide meshConfig.outboundTrafficPolicy.mode; unset: the mesh's.",
      ),
  })
  .strict();

/** Output of kube.namespace. */
export interface KubeNamespaceOutput {
  namespace: string;
  /** Whether this step created it. */
  created: boolean;
  /**
   * Whether it is the tool's (made by this run or an earlier one, and now this run's): a run that does not
   * keep its objects deletes it at the end. A namespace that was there before is only labelled.
   */
  owned: boolean;
  /** `namespace/name` of the Sidecar resource holding the outbound policy, when the step sets one. */
  sidecar?: string;
}

interface NamespaceObject {
  metadata: { labels?: Record<string, string> };
}

interface SidecarList {
  items: { metadata: { name: string; labels?: Record<string, string> }; spec?: Record<string, unknown> }[];
}

/**
 * The namespace a scenario runs in, made ready: created when absent (the run's own, removed with the run's
 * objects), labelled (sidecar injection), and given an outbound traffic policy of its own.
 */
export const kubeNamespaceAction = defineAction({
  name: 'kube.namespace',
  description:
    "Make the scenario's namespace ready: create it when absent (then it is the run's own, and a run that " +
    "does not keep its objects deletes it at the end), label it (sidecar injection, for the lab's Istio revision), and " +
    "set its sidecars' outbound traffic policy with a Sidecar resource, scoped to the namespace instead of the mesh.",
  input: kubeNamespaceInput,
  policy: KUBECTL_POLICY,
  idempotent: true,
  summary: (input) =>
    `kube.namespace ${input.name ?? "(the lab's)"}${input.injection ? ' injection' : ''} ${Object.entries(
      input.labels,
    )
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')}${input.outboundTrafficPolicy ? ` outbound ${input.outboundTrafficPolicy}` : ''}`.slice(
      0,
      200,
    ),
  evidence: (output: KubeNamespaceOutput, input) => [
    output.created
      ? `namespace ${output.namespace} created for this run`
      : output.owned
        ? `namespace ${output.namespace} (left by an earlier run) taken over by this run`
        : `namespace ${output.namespace} was there before: labelled only, never deleted`,
    ...(output.sidecar ? [`Sidecar ${output.sidecar}: outbound traffic ${input.outboundTrafficPolicy}`] : []),
  ],
  examples: [
    {
      description: "The lab's namespace, with sidecar injection and only registered hosts let out",
      yaml: 'id: namespace\nuses: kube.namespace\nwith:\n  injection: true\n  outboundTrafficPolicy: REGISTRY_ONLY',
    },
    {
      description: 'A namespace of its own',
      yaml: 'id: namespace\nuses: kube.namespace\nwith:\n  name: tunnel-lab-a\n  injection: true',
    },
  ],
  changes: (input, { lab }) => {
    const name = input.name ?? lab.namespace;
    const labels = Object.entries(namespaceLabels(input, lab)).map(([k, v]) => `${k}=${v}`);
    return [
      `create Namespace ${name} if absent (then removed with the run's objects), else label it` +
        (labels.length ? `: ${labels.join(', ')}` : ''),
      ...(input.outboundTrafficPolicy
        ? [
            `apply Sidecar ${name}/${POLICY_SIDECAR} (outbound traffic ${input.outboundTrafficPolicy} in ${name} only)`,
          ]
        : []),
    ];
  },
  create: () => async (input, ctx) => {
    const lab = await ctx.lab();
    const namespace = input.name ?? lab.def.namespace;
    const labels = namespaceLabels(input, lab.def);
    const owner = ownerLabels(ctx.run);
    const found = await lab.kubectl(['get', 'namespace', namespace, '-o', 'json', '--ignore-not-found'], {
      timeoutMs: 60_000,
    });
    const existing = found.stdout.trim() ? (JSON.parse(found.stdout) as NamespaceObject) : undefined;
    // A namespace an earlier run made (and did not delete) is the tool's: this run takes it over.
    const owned = !existing || existing.metadata.labels?.[MANAGED_BY_LABEL] === MANAGER;
    const theirInjection = existing?.metadata.labels?.['istio-injection'];
    if (!owned && input.injection && lab.def.istio?.revision && theirInjection !== undefined) {
      throw new LabConfigError(
        `namespace ${namespace} is labelled istio-injection=${theirInjection}, which Istio obeys before ` +
          `istio.io/rev, so its pods would not get revision ${lab.def.istio.revision}'s sidecars: remove that ` +
          "label, or give the lab a namespace of the run's own (the lab file's `namespace`)",
      );
    }
    const dir = path.join(ctx.stateDir, 'manifests');
    await mkdir(dir, { recursive: true });
    const apply = async (file: string, object: Record<string, unknown>) => {
      await writeFile(path.join(dir, file), stringify(object));
      await lab.kubectl(['apply', '-f', path.join(dir, file)], { timeoutMs: 60_000 });
    };
    if (owned) {
      await apply(`namespace.${namespace}.yaml`, {
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { name: namespace, labels: { ...labels, ...owner } },
      });
    } else if (Object.keys(labels).length > 0) {
      const changes = Object.entries(labels).map(([k, v]) => `${k}=${v}`);
      await lab.kubectl(['label', 'namespace', namespace, ...changes, '--overwrite'], { timeoutMs: 60_000 });
    }
    let sidecar: string | undefined;
    if (input.outboundTrafficPolicy) {
      await refuseSecondDefaultSidecar(lab, namespace);
      await apply(`sidecar.${namespace}.${POLICY_SIDECAR}.yaml`, {
        apiVersion: 'networking.istio.io/v1',
        kind: 'Sidecar',
        metadata: { name: POLICY_SIDECAR, namespace, labels: owner },
        spec: { outboundTrafficPolicy: { mode: input.outboundTrafficPolicy } },
      });
      sidecar = `${namespace}/${POLICY_SIDECAR}`;
    }
    const output: KubeNamespaceOutput = {
      namespace,
      created: !existing,
      owned,
      ...(sidecar ? { sidecar } : {}),
    };
    return output;
  },
});

/**
 * The labels the step gives the namespace: its `labels`, and with `injection` the lab's injection label. On
 * a lab whose Istio is a revision, `istio-injection` would ask the default revision instead: refused.
 */
function namespaceLabels(
  input: z.output<typeof kubeNamespaceInput>,
  def: Pick<LabDefinitionData, 'istio' | 'name'>,
): Record<string, string> {
  const revision = def.istio?.revision;
  if (revision && 'istio-injection' in input.labels) {
    throw new LabConfigError(
      `the lab ${def.name} uses Istio revision ${revision}, whose sidecars a namespace asks for with ` +
        `istio.io/rev=${revision}: say injection: true instead of the label istio-injection, which the default revision serves`,
    );
  }
  if (!input.injection) return input.labels;
  const [key, value] = injectionLabel(def);
  return { ...input.labels, [key]: value };
}

/**
 * Istio uses one Sidecar resource without a workloadSelector per namespace (the oldest): a second one,
 * beside the namespace owner's, would be ignored or would displace theirs. The owner's is theirs to change.
 */
async function refuseSecondDefaultSidecar(lab: LabRuntime, namespace: string): Promise<void> {
  const { stdout } = await lab.kubectl(
    ['get', 'sidecars.networking.istio.io', '-n', namespace, '-o', 'json'],
    {
      timeoutMs: 60_000,
    },
  );
  const theirs = (JSON.parse(stdout) as SidecarList).items.find(
    (s) =>
      s.metadata.name !== POLICY_SIDECAR &&
      s.metadata.labels?.[MANAGED_BY_LABEL] !== MANAGER &&
      Object.keys(((s.spec?.workloadSelector ?? {}) as { labels?: object }).labels ?? {}).length === 0,
  );
  if (theirs) {
    throw new LabConfigError(
      `namespace ${namespace} already has a Sidecar resource for all its workloads (${theirs.metadata.name}); ` +
        'Istio uses only one, so the outbound traffic policy cannot be set beside it: set it there, or give ' +
        "the lab a namespace of the run's own (the lab file's `namespace`)",
    );
  }
}
