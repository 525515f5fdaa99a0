import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { z } from 'zod';
import { isDuration, toMs } from '../src/duration.js';
import { ExpectationError, LabConfigError } from '../src/errors.js';
import { clusterOf, expandPath, machineWithRole } from '../src/lab/definition.js';
import type { LabRuntime } from '../src/lab/runtime.js';
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
  clusters?: { name?: string; cluster?: { server?: string } & Record<string, unknown> }[];
  contexts?: { name?: string; context?: { cluster?: string; user?: string; namespace?: string } }[];
  users?: { name?: string; user?: Record<string, unknown> }[];
  'current-context'?: string;
}

/** Output of kubeconfig.fetch. */
export interface KubeconfigFetchOutput {
  path: string;
  server: string;
  context: string;
  sha256: string;
  nodesReady: boolean;
  /** On a lab of kind existing: the file it was copied from, and the API server's release. */
  copiedFrom?: string;
  serverVersion?: string;
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
  // The copy goes into the run's own folder on the worker's host; the cluster is only read.
  changes: () => [],
  create:
    () =>
    async (input, ctx): Promise<KubeconfigFetchOutput> => {
      const lab = await ctx.lab();
      if (lab.existing) return copyKubeconfig(lab, input.server);
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

/**
 * On a lab of kind existing: the context the lab names, with its cluster and user, copied from the lab's
 * kubeconfig into the run's folder, files inlined (as `kubectl config view --minify --flatten` does), so
 * that every later step uses exactly that context; then the API server is asked its version.
 */
async function copyKubeconfig(lab: LabRuntime, server: string | undefined): Promise<KubeconfigFetchOutput> {
  const cluster = clusterOf(lab.def);
  const source = expandPath(cluster.kubeconfig, lab.def.file);
  let text: string;
  try {
    text = await readFile(source, 'utf8');
  } catch (err) {
    throw new LabConfigError(
      `cannot read the kubeconfig ${source} that ${lab.def.file} names: ${(err as Error).message}`,
    );
  }
  const config = minifyKubeconfig(parse(text) as Kubeconfig | null, cluster.context, source);
  if (server) for (const c of config.clusters ?? []) c.cluster = { ...c.cluster, server };
  const copy = stringify(config);
  await writeFile(lab.kubeconfig, copy, { mode: 0o600 });
  await chmod(lab.kubeconfig, 0o600);
  const version = await lab.kubectl(['version', '-o', 'json'], { timeoutMs: 60_000 });
  const serverVersion =
    (JSON.parse(version.stdout) as { serverVersion?: { gitVersion?: string } }).serverVersion?.gitVersion ??
    '';
  return {
    path: lab.kubeconfig,
    server: String(config.clusters?.[0]?.cluster?.server ?? ''),
    context: config['current-context'] ?? '',
    sha256: createHash('sha256').update(copy).digest('hex'),
    // Listing nodes needs a cluster-wide permission a namespace's user may not have: the API's answer is the check.
    nodesReady: false,
    copiedFrom: source,
    serverVersion,
  };
}

/** Fields of a kubeconfig's cluster and user that name a file, and the `-data` field that inlines it. */
const FILE_FIELDS: Record<string, string> = {
  'certificate-authority': 'certificate-authority-data',
  'client-certificate': 'client-certificate-data',
  'client-key': 'client-key-data',
};

/** One context of a kubeconfig with its cluster and user, referenced files inlined; `file` names it in errors. */
export function minifyKubeconfig(
  config: Kubeconfig | null,
  context: string | undefined,
  file: string,
): Kubeconfig {
  const name = context ?? config?.['current-context'];
  if (!config || !name)
    throw new LabConfigError(`${file} names no current context: set cluster.context in the lab file`);
  const ctx = config.contexts?.find((c) => c.name === name);
  if (!ctx?.context) {
    const known = (config.contexts ?? []).map((c) => c.name).join(', ') || 'none';
    throw new LabConfigError(`${file} has no context ${name} (contexts: ${known})`);
  }
  const clusterEntry = config.clusters?.find((c) => c.name === ctx.context!.cluster);
  const userEntry = config.users?.find((u) => u.name === ctx.context!.user);
  if (!clusterEntry?.cluster?.server) {
    throw new LabConfigError(
      `${file}: context ${name} names cluster ${ctx.context.cluster ?? '(none)'}, which it does not define`,
    );
  }
  const inline = (fields: Record<string, unknown>): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(fields)) {
      const data = FILE_FIELDS[key];
      if (data && typeof value === 'string') {
        const named = path.resolve(path.dirname(file), value);
        try {
          out[data] = readFileSync(named).toString('base64');
        } catch (err) {
          throw new LabConfigError(
            `${file} names ${named} as ${key}, which cannot be read: ${(err as Error).message}`,
          );
        }
      } else if (key === 'tokenFile' && typeof value === 'string') {
        // It has no inline form: kept as a path, which must not depend on where the copy lives.
        out[key] = path.resolve(path.dirname(file), value);
      } else out[key] = value;
    }
    return out;
  };
  return {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: clusterEntry.name, cluster: inline(clusterEntry.cluster) }],
    contexts: [{ name, context: ctx.context }],
    users: userEntry ? [{ name: userEntry.name, user: inline(userEntry.user ?? {}) }] : [],
    'current-context': name,
  } as Kubeconfig;
}
