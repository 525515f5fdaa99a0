import { z } from 'zod';
import { labelKeyInput, labelValueInput } from '../src/lab/kube-names.js';
import { defineAction, KUBECTL_POLICY } from './action.js';

/** Input of kube.label. */
export const kubeLabelInput = z
  .object({
    kind: z.enum(['namespace']).default('namespace').describe('Kind of the object to label.'),
    name: z.string().min(1).describe('Name of the object, e.g. default.'),
    labels: z
      .record(labelKeyInput, labelValueInput.nullable())
      .refine((labels) => Object.keys(labels).length > 0, 'at least one label')
      .describe('Labels to set; null removes the label.'),
  })
  .strict();

/** Output of kube.label. */
export interface KubeLabelOutput {
  /** `namespace/default`. */
  object: string;
  /** False when the object already had these labels (kubectl's "not labeled"). */
  changed: boolean;
  /** What kubectl printed. */
  output: string;
}

/** Sets (or removes) labels on a cluster object, e.g. istio-injection=enabled on a namespace. */
export const kubeLabelAction = defineAction({
  name: 'kube.label',
  description:
    'Label a namespace with kubectl label --overwrite (e.g. istio-injection=enabled for automatic sidecar injection).',
  input: kubeLabelInput,
  policy: KUBECTL_POLICY,
  idempotent: true,
  summary: (input) =>
    `kube.label ${input.kind} ${input.name} ${Object.entries(input.labels)
      .map(([k, v]) => (v === null ? `${k}-` : `${k}=${v}`))
      .join(' ')}`.slice(0, 200),
  examples: [
    {
      description: 'Turn on sidecar injection in the default namespace',
      yaml: 'id: label-default\nuses: kube.label\nwith:\n  name: default\n  labels: { istio-injection: enabled }',
    },
    {
      description: 'Turn it off again',
      yaml: 'id: unlabel-default\nuses: kube.label\nwith:\n  name: default\n  labels: { istio-injection: null }',
    },
  ],
  changes: (input) => [
    `label ${input.kind} ${input.name}: ${Object.entries(input.labels)
      .map(([key, value]) => (value === null ? `remove ${key}` : `${key}=${value}`))
      .join(', ')}`,
  ],
  create: () => async (input, ctx) => {
    const lab = await ctx.lab();
    const changes = Object.entries(input.labels).map(([key, value]) =>
      value === null ? `${key}-` : `${key}=${value}`,
    );
    const { stdout } = await lab.kubectl(['label', input.kind, input.name, ...changes, '--overwrite'], {
      timeoutMs: 60_000,
    });
    const output: KubeLabelOutput = {
      object: `${input.kind}/${input.name}`,
      changed: !/\bnot labeled\b/.test(stdout),
      output: stdout.trim(),
    };
    return output;
  },
});
