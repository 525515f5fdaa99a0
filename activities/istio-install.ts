import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { z } from 'zod';
import { isDuration, toMs } from '../src/duration.js';
import { LabConfigError, LabToolError } from '../src/errors.js';
import { clusterOf, ownEgressGateway, SHARED_EGRESS_GATEWAY } from '../src/lab/definition.js';
import type { LabRuntime } from '../src/lab/runtime.js';
import { checkTool } from './tools-check.js';
import { defineAction } from './action.js';

/** Namespace and name of the ConfigMap that records what istio.install last installed. */
export const ISTIO_MARKER = { namespace: 'istio-system', name: 'tunnel-lab-istio' } as const;

/** Input of istio.install. */
export const istioInstallInput = z
  .object({
    profile: z
      .string()
      .regex(/^[a-z][-a-z]*$/, 'must be a profile name such as demo')
      .default('demo')
      .describe('Istio configuration profile; demo ships the egress gateway.'),
    set: z
      .record(z.string().regex(/^[A-Za-z][\w.[\]-]*$/, 'must be a setting path'), z.string())
      .default({})
      .describe(
        'istioctl --set values, e.g. meshConfig.accessLogFile: /dev/stdout and ' +
          'meshConfig.outboundTrafficPolicy.mode: REGISTRY_ONLY.',
      ),
    waitFor: z
      .array(z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/))
      .default(['istiod', 'istio-egressgateway'])
      .describe('Deployments in istio-system whose rollout must finish.'),
    rolloutTimeout: z
      .string()
      .refine(isDuration, 'must be a duration such as 300s')
      .default('300s')
      .describe('How long kubectl rollout status waits for each deployment.'),
  })
  .strict();

/** Output of istio.install. */
export interface IstioInstallOutput {
  /** True when nothing was installed: the cluster had these settings already, or the lab is not ours to install on. */
  skipped: boolean;
  /** On a lab of kind existing: the Istio found there, checked against the step's settings. */
  found?: InstalledIstio;
  /** The canonical JSON of profile and settings, as recorded in the marker ConfigMap. */
  settings: string;
  /** What istioctl printed (the ✔ lines). */
  lines?: string[];
  rollouts?: string[];
}

/** The Istio an existing cluster runs, as istio.install checked it. */
export interface InstalledIstio {
  /** The lab's revision's istiod Deployments and their release, from their images. */
  istiod: { name: string; version: string; revision?: string }[];
  /** Each `set` value: what the step wants, and what the cluster's mesh config has (unset: its default). */
  settings: { key: string; wants: string; has: string; matches: boolean }[];
  /** `set` values that are not mesh config (`meshConfig.*`), which an installed Istio cannot be asked for. */
  unchecked: string[];
}

/**
 * Settings that decide where traffic goes: on an existing cluster, one that differs from what a step
 * wants would make the scenario's verdicts wrong, so the step fails. Others (the access log) are reported.
 */
const TRAFFIC_SETTINGS: Record<string, string> = {
  'meshConfig.outboundTrafficPolicy.mode': 'ALLOW_ANY',
};

/** `{profile, set}` with sorted keys, so that equal settings always compare equal. */
export function canonicalSettings(profile: string, set: Record<string, string>): string {
  const sorted = Object.fromEntries(
    Object.keys(set)
      .sort()
      .map((k) => [k, set[k]!]),
  );
  return JSON.stringify({ profile, set: sorted });
}

/** Installs Istio with istioctl, unless the cluster already has the same installation. */
export const istioInstallAction = defineAction({
  name: 'istio.install',
  description:
    'Install Istio with istioctl install --set ..., wait for its deployments, and record the settings in a ' +
    'ConfigMap so that a rerun with the same settings does nothing.',
  input: istioInstallInput,
  policy: {
    timeout: '15m',
    maxTimeout: '1h',
    heartbeatTimeout: '30s',
    retry: { attempts: 3, initialInterval: '10s', backoff: 2, maxInterval: '2m' },
    maxAttempts: 10,
  },
  idempotent: true,
  summary: (input) =>
    `istio.install profile=${input.profile}${Object.entries(input.set)
      .map(([k, v]) => ` ${k}=${v}`)
      .join('')}`.slice(0, 200),
  examples: [
    {
      description: "The proof of concept's installation",
      yaml:
        'id: istio\nuses: istio.install\nwith:\n  profile: demo\n  set:\n    meshConfig.accessLogFile: /dev/stdout\n' +
        '    meshConfig.outboundTrafficPolicy.mode: REGISTRY_ONLY',
    },
  ],
  evidence: (output: IstioInstallOutput) => {
    if (!output.found) return [];
    return [
      ...output.found.istiod.map(
        (d) =>
          `${d.name}: Istio ${d.version}${d.revision && d.revision !== 'default' ? `, revision ${d.revision}` : ''}`,
      ),
      ...output.found.settings.map(
        (v) => `${v.key}: ${v.has}${v.matches ? '' : ` (the step wants ${v.wants})`}`,
      ),
      ...output.found.unchecked.map((key) => `${key}: not mesh config, not checked`),
    ];
  },
  changes: (input, { lab }) =>
    lab.cluster && !lab.cluster.installIstio
      ? []
      : [
          `istioctl install profile=${input.profile}${Object.entries(input.set)
            .map(([k, v]) => ` ${k}=${v}`)
            .join('')} (mesh-wide), unless installed with these settings`,
          `apply ConfigMap ${ISTIO_MARKER.namespace}/${ISTIO_MARKER.name} (the settings installed)`,
        ],
  create: () => async (input, ctx) => {
    const lab = await ctx.lab();
    if (lab.existing && !clusterOf(lab.def).installIstio) return checkInstalled(lab, input);
    // Also checked by tools.check at a run's start; a playbook without that step is still protected.
    await checkTool(lab, 'istioctl');
    const settings = canonicalSettings(input.profile, input.set);
    const marker = await lab.kubectl(
      [
        '-n',
        ISTIO_MARKER.namespace,
        'get',
        'configmap',
        ISTIO_MARKER.name,
        '-o',
        'jsonpath={.data.settings}',
      ],
      { check: false, timeoutMs: 60_000 },
    );
    if (marker.exitCode === 0 && marker.stdout.trim() === settings) {
      ctx.log.info('Istio already installed with these settings', { settings });
      const output: IstioInstallOutput = { skipped: true, settings };
      return output;
    }
    if (marker.exitCode !== 0 && !/\(NotFound\)/.test(marker.stderr)) {
      throw new LabToolError(
        ['kubectl', 'get', 'configmap', ISTIO_MARKER.name],
        marker.exitCode,
        marker.stderr.trim(),
      );
    }

    const sets = Object.keys(input.set)
      .sort()
      .flatMap((key) => ['--set', `${key}=${input.set[key]}`]);
    const installed = await lab.istioctl(['install', '-y', '--set', `profile=${input.profile}`, ...sets], {
      timeoutMs: toMs('10m'),
    });
    const rollouts = await waitForRollouts(lab, input);

    // Recorded last: a marker means the installation finished and its deployments rolled out.
    const file = path.join(ctx.stateDir, 'manifests', 'istio', `${ISTIO_MARKER.name}.yaml`);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(
      file,
      stringify({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: {
          name: ISTIO_MARKER.name,
          namespace: ISTIO_MARKER.namespace,
          labels: { 'app.kubernetes.io/part-of': 'tunnel-lab' },
        },
        data: { settings },
      }),
    );
    await lab.kubectl(['apply', '-f', file], { timeoutMs: 60_000 });
    const output: IstioInstallOutput = {
      skipped: false,
      settings,
      lines: installed.stdout
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l.startsWith('✔')),
      rollouts,
    };
    return output;
  },
});

/**
 * On a lab of kind existing that may not install Istio: reads the Istio already there (istiod's release,
 * the `istio` mesh ConfigMap in istio-system, the waited-for Deployments rolled out) and fails when it
 * cannot run the scenario as the step describes it.
 */
async function checkInstalled(
  lab: LabRuntime,
  input: z.output<typeof istioInstallInput>,
): Promise<IstioInstallOutput> {
  const where = `${lab.def.file}: cluster.installIstio is false, so istio.install checks the Istio installed`;
  const revision = lab.def.istio?.revision;
  const deployments = await lab.kubectl(
    ['-n', ISTIO_MARKER.namespace, 'get', 'deployments', '-l', 'app=istiod', '-o', 'json'],
    { timeoutMs: 60_000 },
  );
  const all = ((JSON.parse(deployments.stdout) as { items?: KubeDeployment[] }).items ?? []).map((d) => ({
    name: d.metadata.name,
    version: imageTag(d.spec?.template?.spec?.containers?.[0]?.image ?? ''),
    revision: d.metadata.labels?.['istio.io/rev'] ?? 'default',
  }));
  if (all.length === 0) {
    throw new LabConfigError(
      `no istiod Deployment in ${ISTIO_MARKER.namespace} (${where}): install Istio first`,
    );
  }
  const revisions = [...new Set(all.map((d) => d.revision))].sort();
  const istiod = all.filter((d) => d.revision === (revision ?? 'default'));
  if (istiod.length === 0) {
    throw new LabConfigError(
      revision
        ? `no istiod of revision ${revision} in ${ISTIO_MARKER.namespace}: the cluster's are ${revisions.join(', ')} ` +
            `(${lab.def.file} names istio.revision ${revision})`
        : `the cluster's istiod are revisions ${revisions.join(', ')}, and none is the default: set ` +
            `istio.revision in ${lab.def.file} to the one the scenarios should use`,
    );
  }
  const pinned = lab.def.istio?.version;
  if (pinned && !istiod.some((d) => d.version === pinned)) {
    throw new LabConfigError(
      `the cluster runs Istio ${istiod.map((d) => d.version).join(', ')}` +
        `${revision ? ` as revision ${revision}` : ''}, but ${lab.def.file} pins ${pinned}`,
    );
  }
  // Each revision reads a mesh config of its own: istio-<revision>; the default one reads istio.
  const meshConfigMap = revision ? `istio-${revision}` : 'istio';
  const configMap = await lab.kubectl(
    ['-n', ISTIO_MARKER.namespace, 'get', 'configmap', meshConfigMap, '-o', 'jsonpath={.data.mesh}'],
    { timeoutMs: 60_000 },
  );
  const mesh = (parse(configMap.stdout) ?? {}) as Record<string, unknown>;
  const settings = Object.keys(input.set)
    .filter((key) => key.startsWith('meshConfig.'))
    .sort()
    .map((key) => {
      const value = key
        .slice('meshConfig.'.length)
        .split('.')
        .reduce<unknown>((at, part) => (at as Record<string, unknown> | undefined)?.[part], mesh);
      const has =
        value === undefined
          ? (TRAFFIC_SETTINGS[key] ?? '(unset)')
          : typeof value === 'string'
            ? value
            : JSON.stringify(value);
      return { key, wants: input.set[key]!, has, matches: has === input.set[key] };
    });
  const unchecked = Object.keys(input.set).filter((key) => !key.startsWith('meshConfig.'));
  const wrong = settings.filter((v) => !v.matches && v.key in TRAFFIC_SETTINGS);
  if (wrong.length > 0) {
    throw new LabConfigError(
      `the cluster's mesh config (${meshConfigMap}) has ${wrong.map((v) => `${v.key.slice('meshConfig.'.length)} ${v.has}`).join(', ')}, ` +
        `and the scenario needs ${wrong.map((v) => v.wants).join(', ')} (${where}; it changes nothing mesh-wide)`,
    );
  }
  // The Deployments the step waits for, as this cluster names them: the revision's istiod; and not the shared
  // egress gateway when the runs deploy one of their own (many clusters have none).
  const waitFor = input.waitFor
    .filter((name) => !(name === SHARED_EGRESS_GATEWAY.service && ownEgressGateway(lab.def)))
    .flatMap((name) => (name === 'istiod' ? istiod.map((d) => d.name) : [name]));
  const rollouts = await waitForRollouts(lab, { ...input, waitFor });
  return {
    rollouts,
    skipped: true,
    settings: canonicalSettings(input.profile, input.set),
    found: { istiod, settings, unchecked },
  };
}

interface KubeDeployment {
  metadata: { name: string; labels?: Record<string, string> };
  spec?: { template?: { spec?: { containers?: { image?: string }[] } } };
}

/** The release an image names: `docker.io/istio/pilot:1.28.3` → `1.28.3` (a digest-only image: itself). */
function imageTag(image: string): string {
  const tag = /:([^:/@]+)(@.*)?$/.exec(image)?.[1];
  return tag ?? image;
}

/** Waits for each of the step's istio-system Deployments to roll out; kubectl's last line for each. */
async function waitForRollouts(
  lab: LabRuntime,
  input: z.output<typeof istioInstallInput>,
): Promise<string[]> {
  const timeout = toMs(input.rolloutTimeout);
  const rollouts: string[] = [];
  for (const name of input.waitFor) {
    const { stdout } = await lab.kubectl(
      [
        '-n',
        ISTIO_MARKER.namespace,
        'rollout',
        'status',
        `deployment/${name}`,
        `--timeout=${timeout / 1000}s`,
      ],
      { timeoutMs: timeout + 30_000 },
    );
    rollouts.push(stdout.trim().split('\n').at(-1) ?? '');
  }
  return rollouts;
}
