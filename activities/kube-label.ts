import { z } from 'zod';
import { LABEL_KEY, LABEL_VALUE } from '../src/lab/kube-names.js';
import { defineAction } from './action.js';

/** Input of kube.label. */
export const kubeLabelInput = z
  .object({
    kind: z.enum(['namespace']).default('namespace').describe('Kind of the object to label.'),
    name: z.string().min(1).describe('Name of the object, e.g. default.'),
    labels: z
      .record(
        z.string().regex(LABEL_KEY, 'must be a label key such as istio-injection or example.com/name'),
        z
          .string()
          .regex(
            LABEL_VALUE,
            'must be a label value: up to 63 letters, digits, -, _ or ., alphanumeric at both ends',
          )
          .nullable(),
      )
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
  policy: {
    timeout: '1m',
    maxTimeout: '10m',
    heartbeatTimeout: '30s',
    retry: { attempts: 5, initialInterval: '2s', backoff: 2, maxInterval: '30s' },
    maxAttempts: 20,
  },
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
