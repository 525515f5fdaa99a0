import { createHash } from 'node:crypto';
import { chmod, writeFile } from 'node:fs/promises';
import { parse, stringify } from 'yaml';
import { z } from 'zod';
import { isDuration, toMs } from '../src/duration.js';
import { ExpectationError } from '../src/errors.js';
import { machineWithRole } from '../src/lab/definition.js';
import { defineAction } from './action.js';

export const kubeconfigFetchInput = z
  .object({
    machine: z
      .string()
      .optional()
      .describe('Machine to read it from; the lab machine with role kubernetes by default.'),
    server: z
      .string()
      .optional()
      .describe(
        "API server URL to put in the kubeconfig; the lab's network.apiServer (the forwarded port) by default.",
      ),
    waitReady: z.boolean().default(true).describe('Wait until every node reports Ready.'),
    readyTimeout: z
      .string()
      .refine(isDuration, 'must be a duration such as 5m')
      .default('5m')
      .describe('How long kubectl waits for the nodes in one attempt.'),
  })
  .strict();

interface Kubeconfig {
  clusters?: { name?: string; cluster?: { server?: string } }[];
  'current-context'?: string;
}

/**
 * Reads the cluster's admin kubeconfig over ssh, points it at the API address reachable from here and
 * stores it in the run's lab folder, where kubectl and istioctl steps find it. It holds credentials, so
 * only its path and fingerprint are reported.
 */
export const kubeconfigFetchAction = defineAction({
  name: 'kubeconfig.fetch',
  description:
    "Copy the cluster's admin kubeconfig from its VM over ssh, pointed at the lab's API server address (network.apiServer), and wait for Ready nodes.",
  input: kubeconfigFetchInput,
  policy: {
    timeout: '10m',
    maxTimeout: '1h',
    heartbeatTimeout: '30s',
    retry: { attempts: 10, initialInterval: '2s', backoff: 2, maxInterval: '30s' },
    maxAttempts: 50,
  },
  idempotent: true,
  summary: (input) => `kubeconfig.fetch from ${input.machine ?? 'the kubernetes machine'}`,
  examples: [
    {
      description: 'Fetch the k0s admin kubeconfig and wait for the node',
      yaml: 'id: kubeconfig\nuses: kubeconfig.fetch\nwith: { readyTimeout: 5m }',
    },
  ],
  create: () => async (input, ctx) => {
    const lab = await ctx.lab();
    const machine = input.machine ?? machineWithRole(lab.def, 'kubernetes')[0];
    const source = lab.machineFile(machine, 'kubeconfig');
    const read = await lab.withSsh(machine, (ssh) =>
      ssh.run([...lab.sudo(machine), 'cat', source], ctx.signal),
    );
    if (read.code !== 0) {
      // k0s writes admin.conf a while after the VM boots; a retry a little later usually finds it.
      throw new ExpectationError(
        `cannot read ${source} on ${machine} yet: ${read.stderr.trim() || `exit ${read.code}`}`,
      );
    }
    const config = parse(read.stdout) as Kubeconfig | null;
    if (!config?.clusters?.length)
      throw new ExpectationError(`${source} on ${machine} is not a kubeconfig yet`);
    const server = input.server ?? lab.def.network.apiServer;
    if (server) for (const cluster of config.clusters) cluster.cluster = { ...cluster.cluster, server };
    const text = stringify(config);
    await writeFile(lab.kubeconfig, text, { mode: 0o600 });
    await chmod(lab.kubeconfig, 0o600);
    if (input.waitReady) {
      await lab.kubectl([
        'wait',
        '--for=condition=Ready',
        'node',
        '--all',
        `--timeout=${toMs(input.readyTimeout) / 1000}s`,
      ]);
    }
    return {
      path: lab.kubeconfig,
      server: server ?? String(config.clusters[0]!.cluster?.server ?? ''),
      context: config['current-context'] ?? '',
      sha256: createHash('sha256').update(text).digest('hex'),
      nodesReady: input.waitReady,
    };
  },
});
