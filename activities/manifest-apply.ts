import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { stringify } from 'yaml';
import { z } from 'zod';
import { K8S_NAME } from '../src/lab/kube-names.js';
import { isDuration, toMs } from '../src/duration.js';
import {
  labDefaultValues,
  labValues,
  manifestPath,
  manifestsDir,
  mergeValues,
  renderManifestFile,
} from '../src/lab/render.js';
import { withOwnerLabels } from '../src/lab/ownership.js';
import { staysInside } from '../src/paths.js';
import type { LabDefinition } from '../src/lab/definition.js';
import { PLACEHOLDER_SECRETS, runSecrets } from '../src/lab/proxy-credential.js';
import { defineAction } from './action.js';

/** Input of manifest.apply. */
export const manifestApplyInput = z
  .object({
    files: z
      .array(
        z
          .string()
          .min(1)
          .refine(staysInside, 'must be a path inside the manifests/ folder, e.g. common/curl.yaml'),
      )
      .min(1)
      .describe('Templates to render and apply, relative to the manifests/ folder, in order.'),
    values: z
      .record(z.string(), z.unknown())
      .default({})
      .describe(
        'Values for ${{ values.* }}, merged over manifests/values.yaml (e.g. hosts: [www.google.com]).',
      ),
    namespace: z
      .string()
      .regex(K8S_NAME, 'must be a namespace name')
      .optional()
      .describe('kubectl -n; also the default of values.namespace.'),
    delete: z
      .boolean()
      .default(false)
      .describe('Delete the objects (kubectl delete --ignore-not-found) instead of applying them.'),
    waitFor: z
      .array(
        z
          .object({
            kind: z.enum(['deployment']).default('deployment').describe('Kind of the object to wait for.'),
            name: z.string().regex(K8S_NAME).describe('Name of the Deployment.'),
            namespace: z
              .string()
              .regex(K8S_NAME)
              .optional()
              .describe("Its namespace; the step's namespace (or values.namespace) by default."),
          })
          .strict(),
      )
      .default([])
      .describe('Deployments whose rollout must finish after applying (kubectl rollout status).'),
    rolloutTimeout: z
      .string()
      .refine(isDuration, 'must be a duration such as 120s')
      .default('120s')
      .describe('How long kubectl rollout status waits for each of waitFor.'),
  })
  .strict();

/** Output of manifest.apply. */
export interface ManifestApplyOutput {
  action: 'apply' | 'delete';
  /** Each template and where its rendered copy is (in the run's state folder). */
  rendered: { file: string; path: string; objects: number }[];
  /** What kubectl printed, one line per object (e.g. `serviceentry.networking.istio.io/www.google.com created`). */
  lines: string[];
  /** What kubectl rollout status printed for each waitFor. */
  rollouts: string[];
}

/** Renders manifest templates with the lab's values and applies (or deletes) them with kubectl. */
export const manifestApplyAction = defineAction({
  name: 'manifest.apply',
  description:
    'Render Kubernetes/Istio manifest templates from manifests/ with the lab values, kubectl apply (or delete) ' +
    'them, and wait for Deployments to roll out.',
  input: manifestApplyInput,
  policy: {
    timeout: '5m',
    maxTimeout: '30m',
    heartbeatTimeout: '30s',
    retry: { attempts: 5, initialInterval: '2s', backoff: 2, maxInterval: '1m' },
    maxAttempts: 30,
  },
  idempotent: true,
  summary: (input) =>
    `manifest.apply ${input.delete ? '(delete) ' : ''}${input.files.join(' ')}`.slice(0, 200),
  examples: [
    {
      description: 'Deploy the curl client and wait for it',
      yaml:
        'id: curl-client\nuses: manifest.apply\nwith:\n  files: [common/curl.yaml]\n' +
        '  waitFor: [{ name: curl }]',
    },
    {
      description: 'Register the external hosts and route them through the egress gateway and the proxy',
      yaml:
        'id: tunnel\nuses: manifest.apply\nwith:\n  files:\n    - tls-passthrough/service-entries.yaml\n' +
        '    - tls-passthrough/egress-routing.yaml\n    - tls-passthrough/tcp-tunnel-filter.yaml\n' +
        '  values: { hosts: [www.google.com, www.wikipedia.org] }',
    },
    {
      description: 'Remove the tunnel filter again',
      yaml: 'id: untunnel\nuses: manifest.apply\nwith:\n  files: [tls-passthrough/tcp-tunnel-filter.yaml]\n  delete: true',
    },
  ],
  changes: async (input, { projectRoot, lab }) => {
    // The run's secret is not made yet: its place holds a stand-in, which names of objects never contain.
    const { values, templates } = await renderTemplates(projectRoot, input, lab, PLACEHOLDER_SECRETS);
    const namespace =
      input.namespace ?? (typeof values.namespace === 'string' ? values.namespace : 'default');
    return templates.flatMap(({ documents }) =>
      documents.map((d) => {
        const meta = (d.metadata ?? {}) as { name?: string; namespace?: string };
        const where = CLUSTER_SCOPED.includes(String(d.kind)) ? '' : `${meta.namespace ?? namespace}/`;
        return `${input.delete ? 'delete' : 'apply'} ${String(d.kind)} ${where}${meta.name ?? ''}`;
      }),
    );
  },
  create: (deps) => async (input, ctx) => {
    const lab = await ctx.lab();
    const dir = manifestsDir(deps.projectRoot);
    // The run's secrets go only into the rendered files in its folder (mode 0600), never into an output.
    const { values, templates } = await renderTemplates(
      deps.projectRoot,
      input,
      lab.def,
      await runSecrets(ctx.stateDir),
    );
    const namespaceArgs = input.namespace ? ['-n', input.namespace] : [];

    // Every template renders before anything is applied: a broken one changes nothing.
    const rendered: ManifestApplyOutput['rendered'] = [];
    for (const { file, source, documents } of templates) {
      // Labelled with the run, so that a later run on a kept cluster can find and remove them.
      const yaml = documents
        .map((document) => stringify(withOwnerLabels(document, ctx.run), { lineWidth: 0 }))
        .join('---\n');
      const target = path.join(ctx.stateDir, 'manifests', path.relative(dir, source));
      await mkdir(path.dirname(target), { recursive: true });
      await rm(target, { force: true });
      await writeFile(target, yaml, { mode: 0o600 });
      rendered.push({ file, path: target, objects: documents.length });
    }

    // The pods kept by name may be replaced from here on: later steps pick theirs again.
    lab.forgetPods();
    const lines: string[] = [];
    // Deleting goes in reverse, so that what depends on an object goes before it.
    const order = input.delete ? [...rendered].reverse() : rendered;
    for (const { path: file } of order) {
      const args = input.delete
        ? ['delete', '-f', file, '--ignore-not-found', ...namespaceArgs]
        : ['apply', '-f', file, ...namespaceArgs];
      const { stdout } = await lab.kubectl(args, { timeoutMs: 120_000 });
      lines.push(...nonEmpty(stdout));
      ctx.heartbeat({ applied: file });
    }

    const rollouts: string[] = [];
    if (!input.delete) {
      const timeout = toMs(input.rolloutTimeout);
      for (const target of input.waitFor) {
        const namespace =
          target.namespace ??
          input.namespace ??
          (typeof values.namespace === 'string' ? values.namespace : 'default');
        const { stdout } = await lab.kubectl(
          [
            '-n',
            namespace,
            'rollout',
            'status',
            `${target.kind}/${target.name}`,
            `--timeout=${timeout / 1000}s`,
          ],
          { timeoutMs: timeout + 30_000 },
        );
        rollouts.push(nonEmpty(stdout).at(-1) ?? '');
      }
    }
    const output: ManifestApplyOutput = {
      action: input.delete ? 'delete' : 'apply',
      rendered,
      lines,
      rollouts,
    };
    return output;
  },
});

function nonEmpty(text: string): string[] {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean);
}

/** Kinds without a namespace, as the listing of changes names them. */
const CLUSTER_SCOPED = ['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'CustomResourceDefinition'];

/**
 * The step's templates rendered with its values (over manifests/values.yaml; `namespace` is also the
 * default of values.namespace), the lab's and `secrets`: every one, before anything is applied.
 */
async function renderTemplates(
  projectRoot: string,
  input: z.output<typeof manifestApplyInput>,
  lab: LabDefinition,
  secrets: Record<string, string>,
): Promise<{
  values: Record<string, unknown>;
  templates: { file: string; source: string; documents: Record<string, unknown>[] }[];
}> {
  const dir = manifestsDir(projectRoot);
  const overrides =
    input.namespace && !('namespace' in input.values)
      ? { ...input.values, namespace: input.namespace }
      : input.values;
  const values = mergeValues(await labDefaultValues(dir, lab), overrides);
  const context = { lab: labValues(lab), values, secrets };
  const templates = [];
  for (const file of input.files) {
    const source = manifestPath(dir, file);
    const { documents } = await renderManifestFile(source, context, `manifests/${file}`);
    templates.push({ file, source, documents });
  }
  return { values, templates };
}
