import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { stringify } from 'yaml';
import { z } from 'zod';
import { isDuration, toMs } from '../src/duration.js';
import { LabToolError } from '../src/errors.js';
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
  /** True when the cluster already had exactly these settings (nothing ran). */
  skipped: boolean;
  /** The canonical JSON of profile and settings, as recorded in the marker ConfigMap. */
  settings: string;
  /** What istioctl printed (the ✔ lines). */
  lines?: string[];
  rollouts?: string[];
}

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
  create: () => async (input, ctx) => {
    const lab = await ctx.lab();
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
