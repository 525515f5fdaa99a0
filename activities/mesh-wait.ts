import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { K8S_NAME } from '../src/lab/kube-names.js';
import { egressGatewayOf } from '../src/lab/definition.js';
import { isDuration, toMs } from '../src/duration.js';
import { ExpectationError, LabToolError, MeshCheckError } from '../src/errors.js';
import type { LabRuntime } from '../src/lab/runtime.js';
import { defineAction } from './action.js';

/** Input of mesh.wait. */
export const meshWaitInput = z
  .object({
    gateway: z
      .object({
        namespace: z
          .string()
          .regex(K8S_NAME)
          .optional()
          .describe(
            "The egress gateway's namespace: istio-system, or the lab's namespace on a lab with its own gateway.",
          ),
        deployment: z
          .string()
          .regex(K8S_NAME)
          .optional()
          .describe("Its Deployment: istio-egressgateway, or the run's own (egressGateway: own)."),
        tunnels: z
          .array(z.string().min(1))
          .min(1)
          .describe("tunnelingConfig hostnames (HOST:PORT) the gateway's listeners must carry."),
      })
      .strict()
      .optional()
      .describe("Wait until the egress gateway's Envoy holds the tunnels (istioctl proxy-config listeners)."),
    sidecar: z
      .object({
        namespace: z
          .string()
          .regex(K8S_NAME)
          .optional()
          .describe("The client pod's namespace; the lab's `namespace` by default."),
        selector: z.string().min(1).default('app=curl').describe('Label selector of the client pod.'),
        toGateway: z
          .array(z.string().min(1))
          .min(1)
          .optional()
          .describe(
            "SNIs the client's sidecar must route to the egress gateway, or HOST:PORT of a cluster Service's " +
              'TCP port (plain text, no SNI: the listener on its cluster IP).',
          ),
        direct: z
          .array(z.string().min(1))
          .min(1)
          .optional()
          .describe(
            "SNIs (or a cluster Service's HOST:PORT, as for toGateway) the client's sidecar must route straight " +
              "out, to the host's own cluster (`outbound|PORT||HOST`), e.g. after applying ServiceEntries under " +
              'REGISTRY_ONLY.',
          ),
        tunnels: z
          .array(z.string().min(1))
          .min(1)
          .optional()
          .describe(
            "tunnelingConfig hostnames (HOST:PORT) the client's sidecar must carry: it opens these tunnels " +
              'itself, with no egress gateway.',
          ),
        gatewayHost: z
          .string()
          .optional()
          .describe(
            "The egress gateway Service's host name, as the sidecar's clusters name it: " +
              "istio-egressgateway.istio-system.svc.cluster.local, or the run's own gateway's on a lab with one.",
          ),
      })
      .strict()
      .refine(
        (sidecar) => sidecar.toGateway || sidecar.direct || sidecar.tunnels,
        'name toGateway, direct, tunnels or several',
      )
      .optional()
      .describe(
        "Wait until the client's sidecar routes the SNIs to the egress gateway, or directly, or tunnels them itself.",
      ),
    pushStatus: z
      .boolean()
      .default(true)
      .describe(
        "Fail when istiod's /debug/push_status reports a conflict (e.g. two services on 0.0.0.0_443).",
      ),
    within: z
      .string()
      .refine(isDuration, 'must be a duration such as 60s')
      .default('60s')
      .describe('How long the config may take to reach the proxies.'),
    interval: z
      .string()
      .refine(isDuration, 'must be a duration such as 1s')
      .default('250ms')
      .describe('How often to look.'),
  })
  .strict()
  .refine((i) => i.gateway || i.sidecar, 'name gateway, sidecar or both');

/** Output of mesh.wait: what the proxies hold once they hold what the step waits for. */
export interface MeshWaitOutput {
  waitedMs: number;
  /** tunnelingConfig hostnames found on the gateway's listeners. */
  gatewayTunnels?: string[];
  /** The client pod, for each SNI the cluster its sidecar sends it to, and the tunnels it opens itself. */
  sidecar?: { pod: string; routes: Record<string, string>; tunnels?: string[] };
  /** istiod's push status: `clean`, or the conflicts. */
  pushStatus?: string;
}

/** What the step waits for, in words. */
function awaited(input: z.output<typeof meshWaitInput>): string {
  return [
    ...(input.gateway ? [`gateway tunnels ${input.gateway.tunnels.join(', ')}`] : []),
    ...(input.sidecar?.toGateway
      ? [`sidecar routes ${input.sidecar.toGateway.join(', ')} to the gateway`]
      : []),
    ...(input.sidecar?.direct ? [`sidecar routes ${input.sidecar.direct.join(', ')} directly`] : []),
    ...(input.sidecar?.tunnels ? [`sidecar tunnels ${input.sidecar.tunnels.join(', ')}`] : []),
  ].join('; ');
}

/**
 * Waits until istiod's config has reached the proxies: a probe sent before that goes the old way (e.g.
 * direct instead of through the tunnel), as Istio's own tunnelling test knows.
 */
export const meshWaitAction = defineAction({
  name: 'mesh.wait',
  description:
    "Wait until the mesh's proxies carry the applied routing (the egress gateway's tunnels, the client " +
    "sidecar's routes to the gateway), read with istioctl proxy-config; fail on a conflict in istiod's push status.",
  input: meshWaitInput,
  policy: {
    timeout: '2m',
    maxTimeout: '15m',
    heartbeatTimeout: '30s',
    retry: { attempts: 2, initialInterval: '2s', backoff: 2, maxInterval: '10s' },
    maxAttempts: 10,
  },
  evidence: (output: MeshWaitOutput) => [
    ...(output.gatewayTunnels ? [`gateway tunnels: ${output.gatewayTunnels.join(', ')}`] : []),
    ...(output.sidecar && Object.keys(output.sidecar.routes).length > 0
      ? [
          `sidecar of ${output.sidecar.pod}: ${Object.entries(output.sidecar.routes)
            .map(([sni, cluster]) => `${sni} → ${cluster}`)
            .join(', ')}`,
        ]
      : []),
    ...(output.sidecar?.tunnels
      ? [`sidecar of ${output.sidecar.pod} tunnels: ${output.sidecar.tunnels.join(', ')}`]
      : []),
    `after ${(output.waitedMs / 1000).toFixed(1)} s`,
  ],
  idempotent: true,
  expects: (input) => awaited(input),
  summary: (input) => `mesh.wait ${awaited(input)}`.slice(0, 200),
  examples: [
    {
      description: 'After applying the tunnel: wait for the gateway and the sidecar to carry it',
      yaml:
        'id: tunnel-ready\nuses: mesh.wait\nwith:\n  gateway: { tunnels: [www.google.com:443] }\n' +
        '  sidecar: { toGateway: [www.google.com] }',
    },
    {
      description: 'After applying ServiceEntries: wait for the sidecar to let the hosts out directly',
      yaml: 'id: direct-ready\nuses: mesh.wait\nwith:\n  sidecar: { direct: [www.google.com] }',
    },
  ],
  changes: () => [],
  create: () => async (input, ctx) => {
    const lab = await ctx.lab();
    const egress = egressGatewayOf(lab.def);
    const started = Date.now();
    const deadline = started + toMs(input.within);
    const output: MeshWaitOutput = { waitedMs: 0 };
    // A Service's cluster IP does not change while the step waits: looked up once, not on every look.
    const clusterIps = new Map<string, Promise<string>>();
    const clusterIpOf = (name: string, namespace: string) => {
      const key = `${namespace}/${name}`;
      if (!clusterIps.has(key)) clusterIps.set(key, clusterIp(lab, name, namespace));
      return clusterIps.get(key)!;
    };
    let missing: string[] = [];
    for (;;) {
      missing = [];
      // The gateway and the sidecar are asked at once.
      const [gateway, sidecar] = await Promise.all([
        input.gateway &&
          listenersOf(
            lab,
            `deploy/${input.gateway.deployment ?? egress.service}`,
            input.gateway.namespace ?? egress.namespace,
          ).then(tunnelHostnames),
        input.sidecar &&
          sidecarRoutes(lab, input.sidecar.namespace ?? lab.def.namespace, input.sidecar.selector),
      ]);
      if (input.gateway && gateway) {
        output.gatewayTunnels = gateway;
        for (const t of input.gateway.tunnels) {
          if (!gateway.includes(t)) missing.push(`the gateway has no tunnel to ${t}`);
        }
      }
      if (input.sidecar && sidecar) {
        const { pod, routes, tunnels } = sidecar;
        output.sidecar = { pod, routes: {}, ...(input.sidecar.tunnels ? { tunnels } : {}) };
        for (const t of input.sidecar.tunnels ?? []) {
          if (!tunnels.includes(t)) missing.push(`the sidecar of ${pod} has no tunnel to ${t}`);
        }
        // Each SNI with the cluster it must go to: the gateway's, or its own (`outbound|PORT||SNI`).
        const { toGateway = [], direct = [] } = input.sidecar;
        const gatewayHost =
          input.sidecar.gatewayHost ?? `${egress.service}.${egress.namespace}.svc.cluster.local`;
        // A cluster Service's HOST:PORT is plain text: the chain of the listener on its cluster IP.
        const hostOf = (sni: string) => (SERVICE_PORT.test(sni) ? sni.replace(/:\d+$/, '') : sni);
        const wanted = [
          ...toGateway.map((sni) => ({ sni, suffix: `|${gatewayHost}`, to: 'the gateway' })),
          ...direct.map((sni) => ({ sni, suffix: `||${hostOf(sni)}`, to: 'directly' })),
        ];
        for (const { sni, suffix, to } of wanted) {
          const service = SERVICE_PORT.exec(sni);
          const cluster = service
            ? sidecar.plain[`${await clusterIpOf(service[1]!, service[2]!)}:${service[3]}`]
            : routes[sni];
          if (cluster) output.sidecar.routes[sni] = cluster;
          if (!cluster?.endsWith(suffix)) {
            missing.push(`the sidecar of ${pod} sends ${sni} to ${cluster ?? 'no route'}, not ${to}`);
          }
        }
      }
      ctx.heartbeat({ missing });
      if (missing.length === 0) break;
      if (Date.now() >= deadline) {
        throw new ExpectationError(
          `after ${input.within} the proxies still lack the config: ${missing.join('; ')}`,
        );
      }
      await sleep(toMs(input.interval), undefined, { signal: ctx.signal });
    }
    if (input.pushStatus) {
      const conflicts = await pushConflicts(lab);
      output.pushStatus = conflicts.length === 0 ? 'clean' : conflicts.join('; ');
      if (conflicts.length > 0)
        throw new MeshCheckError(`istiod's push status reports: ${conflicts.join('; ')}`);
    }
    output.waitedMs = Date.now() - started;
    return output;
  },
});

type Json = Record<string, unknown>;

async function listenersOf(lab: LabRuntime, target: string, namespace?: string): Promise<unknown> {
  const args = ['proxy-config', 'listeners', target, ...(namespace ? ['-n', namespace] : []), '-o', 'json'];
  return listenerJson(target, (await lab.istioctl(args, { timeoutMs: 60_000 })).stdout);
}

/** The SNI routes of the sidecar of the pod `selector` picks (kept between steps, see LabRuntime.podFor). */
async function sidecarRoutes(
  lab: LabRuntime,
  namespace: string,
  selector: string,
): Promise<{
  pod: string;
  routes: Record<string, string>;
  plain: Record<string, string>;
  tunnels: string[];
}> {
  const args = (pod: string) => ['proxy-config', 'listeners', `${pod}.${namespace}`, '-o', 'json'];
  const { pod, result } = await lab.inPod(namespace, selector, (name) =>
    lab.istioctl(args(name), { timeoutMs: 60_000, check: false }),
  );
  if (result.exitCode !== 0)
    throw new LabToolError(['istioctl', ...args(pod)], result.exitCode, result.stderr.trim().slice(-600));
  const dump = listenerJson(`${pod}.${namespace}`, result.stdout);
  return { pod, routes: sniRoutes(dump), plain: plainRoutes(dump), tunnels: tunnelHostnames(dump) };
}

/** `NAME.NAMESPACE.svc.cluster.local:PORT`: a cluster Service's port, routed by its cluster IP. */
const SERVICE_PORT = /^([a-z0-9-]+)\.([a-z0-9-]+)\.svc\.cluster\.local:(\d+)$/;

/** The cluster IP of Service `name` in `namespace`, as the sidecar's listener for it is addressed. */
async function clusterIp(lab: LabRuntime, name: string, namespace: string): Promise<string> {
  const args = ['get', 'service', name, '-n', namespace, '-o', 'jsonpath={.spec.clusterIP}'];
  return (await lab.kubectl(args, { timeoutMs: 60_000 })).stdout.trim();
}

function listenerJson(target: string, stdout: string): unknown {
  try {
    return JSON.parse(stdout) as unknown;
  } catch {
    throw new ExpectationError(
      `istioctl proxy-config listeners ${target} printed no JSON: ${stdout.slice(0, 200)}`,
    );
  }
}

/** Every tunnelingConfig hostname in a listener dump (Envoy's JSON, camelCase or proto names). */
export function tunnelHostnames(dump: unknown): string[] {
  const out = new Set<string>();
  const visit = (value: unknown) => {
    if (Array.isArray(value)) return value.forEach(visit);
    if (!value || typeof value !== 'object') return;
    for (const [key, item] of Object.entries(value as Json)) {
      if ((key === 'tunnelingConfig' || key === 'tunneling_config') && item && typeof item === 'object') {
        const hostname = (item as Json).hostname;
        if (typeof hostname === 'string') out.add(hostname);
      }
      visit(item);
    }
  };
  visit(dump);
  return [...out].sort();
}

/** SNI -> the cluster of the tcp_proxy of the first filter chain that matches it, across the dump's listeners. */
export function sniRoutes(dump: unknown): Record<string, string> {
  const routes: Record<string, string> = {};
  for (const listener of Array.isArray(dump) ? (dump as Json[]) : []) {
    const chains = (listener.filterChains ?? listener.filter_chains ?? []) as Json[];
    for (const chain of chains) {
      const match = (chain.filterChainMatch ?? chain.filter_chain_match ?? {}) as Json;
      const names = (match.serverNames ?? match.server_names ?? []) as string[];
      for (const filter of (chain.filters ?? []) as Json[]) {
        const config = (filter.typedConfig ?? filter.typed_config ?? {}) as Json;
        if (typeof config.cluster !== 'string') continue;
        for (const name of names) routes[name] ??= config.cluster;
      }
    }
  }
  return routes;
}

/**
 * `IP:PORT` -> the cluster of the tcp_proxy of a listener's chain that matches no SNI, for listeners on a
 * service's own address (a cluster IP): where the sidecar sends plain TCP to that service port.
 */
export function plainRoutes(dump: unknown): Record<string, string> {
  const routes: Record<string, string> = {};
  for (const listener of Array.isArray(dump) ? (dump as Json[]) : []) {
    const socket =
      ((listener.address ?? {}) as Json).socketAddress ?? ((listener.address ?? {}) as Json).socket_address;
    const { address, portValue, port_value } = (socket ?? {}) as Json;
    if (typeof address !== 'string' || address === '0.0.0.0' || address === '::') continue;
    const key = `${address}:${String(portValue ?? port_value)}`;
    const chains = (listener.filterChains ?? listener.filter_chains ?? []) as Json[];
    for (const chain of chains) {
      const match = (chain.filterChainMatch ?? chain.filter_chain_match ?? {}) as Json;
      if (((match.serverNames ?? match.server_names ?? []) as string[]).length > 0) continue;
      for (const filter of (chain.filters ?? []) as Json[]) {
        const config = (filter.typedConfig ?? filter.typed_config ?? {}) as Json;
        if (typeof config.cluster === 'string') routes[key] ??= config.cluster;
      }
    }
  }
  return routes;
}

/** The conflicts in istiod's /debug/push_status (`{}` when clean). */
async function pushConflicts(lab: LabRuntime): Promise<string[]> {
  const { stdout } = await lab.kubectl(
    [
      '-n',
      'istio-system',
      'exec',
      'deploy/istiod',
      '--',
      'curl',
      '-s',
      'http://localhost:15014/debug/push_status',
    ],
    { timeoutMs: 60_000 },
  );
  let status: Record<string, Record<string, { message?: string }>>;
  try {
    status = JSON.parse(stdout || '{}') as typeof status;
  } catch {
    throw new ExpectationError(`istiod's push status is not JSON: ${stdout.slice(0, 200)}`);
  }
  return Object.entries(status)
    .filter(([metric]) => metric.startsWith('pilot_conflict'))
    .flatMap(([metric, entries]) =>
      Object.entries(entries).map(([key, e]) => `${metric} ${key}: ${e.message ?? ''}`),
    );
}
