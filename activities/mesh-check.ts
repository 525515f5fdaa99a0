import { z } from 'zod';
import { MeshCheckError } from '../src/errors.js';
import { machineWithRole } from '../src/lab/definition.js';
import { renderManifestSet, oracleRequest, type MeshSettings } from '../src/mesh/manifest-set.js';
import { ensureOracle, findOracle, parseProbe, runOracle } from '../src/mesh/oracle.js';
import { describeVerdict, type MeshVerdict, type VerdictKind } from '../src/mesh/verdict.js';
import { modelAnswer, modelLab } from '../sim/mesh/answer.js';
import { ownEgressGateway } from '../src/lab/definition.js';
import { runSecrets } from '../src/lab/proxy-credential.js';
import { defineAction } from './action.js';

const VERDICTS = ['blocked', 'direct', 'tunnel', 'fail'] as const satisfies readonly VerdictKind[];

/** Input of mesh.check. */
export const meshCheckInput = z
  .object({
    files: z
      .array(z.string().min(1))
      .min(1)
      .describe(
        'Every template (relative to manifests/) the cluster will hold once the next steps ran, in apply order.',
      ),
    values: z
      .record(z.string(), z.unknown())
      .default({})
      .describe(
        'Values for ${{ values.* }}, merged over manifests/values.yaml, as manifest.apply takes them.',
      ),
    outboundTrafficPolicy: z
      .enum(['REGISTRY_ONLY', 'ALLOW_ANY'])
      .default('REGISTRY_ONLY')
      .describe("The mesh's meshConfig.outboundTrafficPolicy.mode, as istio.install set it."),
    expect: z
      .record(z.string().min(1), z.enum(VERDICTS))
      .superRefine((e, ctx) => {
        for (const key of Object.keys(e).filter((k) => !parseProbe(k)))
          ctx.addIssue({
            code: 'custom',
            path: [key],
            message: 'must be a host, or an http:// or https:// URL',
          });
      })
      .refine((e) => Object.keys(e).length > 0, 'name at least one host')
      .describe(
        'Where each host (curl https://HOST from the client pod), or URL (http://HOST[:PORT] for plain ' +
          'HTTP, https://HOST:PORT), must go: blocked, direct, tunnel or fail.',
      ),
    engine: z
      .enum(['auto', 'oracle', 'model'])
      .default('auto')
      .describe(
        'Who answers: oracle (istiod and Envoy code, built once from tools/istio-oracle), model (the simulated ' +
          "lab's mesh model, held to the oracle by tests), or auto: the oracle when it is built or the lab is " +
          'not simulated, else the model.',
      ),
  })
  .strict();

/** Output of mesh.check: the evidence. */
export interface MeshCheckOutput {
  /** Who answered, and from which code. */
  engine: 'istio-oracle' | 'sim-model';
  source: string;
  /** One line per host: `www.google.com:443 tunnel via 192.168.56.10:3128 CONNECT www.google.com:443 ...`. */
  verdicts: string[];
  /** For each probe (HOST:PORT), the listener, chain and cluster decisions on the way. */
  paths: Record<string, string[]>;
  /** Listener conflicts as istiod's push status names them. */
  conflicts: string[];
  /** Why Envoy would reject a proxy's config. */
  nacks: string[];
  /** Objects Kubernetes or Istio would refuse. */
  rejected: string[];
  /** What Istio's analyzers (istioctl analyze) report; errors fail the step. */
  analysis: string[];
}

/** Judges manifests before they are applied: invalid objects, NACKs, conflicts, and where each host goes. */
export const meshCheckAction = defineAction({
  name: 'mesh.check',
  description:
    "Preflight: render the manifests a scenario will apply, ask Istio's own config generator (or, on the " +
    "simulated lab, its model) where each host's TLS (or plain HTTP) goes, and fail before the cluster is touched when an " +
    'object is invalid, Envoy would reject the config, a listener conflicts, or a host would not go as expected.',
  input: meshCheckInput,
  policy: {
    timeout: '2m',
    // The first use of the oracle on a machine builds it (minutes).
    maxTimeout: '30m',
    heartbeatTimeout: '30s',
    // A verdict is not retried (MeshCheckError is non-retryable); the second attempt is for a worker that
    // died or an oracle that crashed mid-check.
    retry: { attempts: 2, initialInterval: '1s', backoff: 2, maxInterval: '1s' },
    maxAttempts: 3,
  },
  evidence: (output: MeshCheckOutput) => [
    `${output.engine}:`,
    ...output.verdicts.map((verdict) => `  ${verdict}`),
  ],
  idempotent: true,
  expects: (input) =>
    Object.entries(input.expect)
      .map(([host, verdict]) => `${host} ${verdict}`)
      .join(', '),
  summary: (input) =>
    `mesh.check ${Object.entries(input.expect)
      .map(([host, verdict]) => `${host} ${verdict}`)
      .join(', ')}`.slice(0, 200),
  examples: [
    {
      description: 'Before applying the tunnel: both hosts must be tunnelled, anything else blocked',
      yaml:
        'id: preflight\nuses: mesh.check\nwith:\n  files:\n    - tls-passthrough/service-entries.yaml\n' +
        '    - tls-passthrough/egress-routing.yaml\n    - tls-passthrough/tcp-tunnel-filter.yaml\n' +
        '  expect: { www.google.com: tunnel, www.wikipedia.org: tunnel, www.example.com: blocked }',
    },
  ],
  changes: () => [],
  create: (deps) => async (input, ctx) => {
    const lab = await ctx.lab();
    const set = await renderManifestSet(
      input.files.map((file) => ({ file })),
      {
        projectRoot: deps.projectRoot,
        lab: lab.def,
        values: input.values,
        secrets: await runSecrets(ctx.stateDir),
      },
    );
    const namespace = typeof set.values.namespace === 'string' ? set.values.namespace : 'default';
    const own = ownEgressGateway(lab.def);
    const settings: MeshSettings = {
      outboundTrafficPolicy: input.outboundTrafficPolicy,
      client: { pod: 'curl', namespace, labels: { app: 'curl' } },
      // The run's own gateway (values.egressGateway names it), with its own pods' labels.
      ...(own
        ? { gatewayLabels: own.selector, ownGateway: { namespace: own.namespace, service: own.service } }
        : {}),
    };
    const expected = Object.entries(input.expect).map(([key, want]) => ({
      key,
      want,
      probe: parseProbe(key)!,
    }));
    const probes = expected.map((e) => e.probe);
    const simulated = lab.def.sim !== undefined;
    const built = await findOracle(deps.projectRoot);
    const useOracle = input.engine === 'oracle' || (input.engine === 'auto' && (built || !simulated));

    let output: MeshCheckOutput;
    let verdicts: MeshVerdict[];
    let analysisErrors: string[] = [];
    if (useOracle) {
      const beat = setInterval(() => ctx.heartbeat({ building: 'istio-oracle' }), 5_000);
      let binary: string;
      try {
        binary = built ?? (await ensureOracle(deps.projectRoot, (line) => ctx.log.info(line)));
      } finally {
        clearInterval(beat);
      }
      const answer = await runOracle(binary, oracleRequest(set, settings, probes), { command: ctx });
      verdicts = answer.verdicts;
      output = evidence('istio-oracle', verdicts, {
        source: `istio.io/istio ${answer.versions['istio.io/istio'] ?? '?'}, go-control-plane ${answer.versions['github.com/envoyproxy/go-control-plane/envoy'] ?? '?'}`,
        pushStatus: answer.pushStatus,
        nacks: { sidecar: answer.proxies.sidecar.nacks ?? [], gateway: answer.proxies.gateway.nacks ?? [] },
        rejected: answer.objects
          .filter((o) => !o.accepted)
          .map((o) => `${o.kind} ${o.namespace ?? ''}/${o.name}: ${(o.errors ?? []).join('; ')}`),
        analysis: answer.analysis.map((f) => f.message),
      });
      analysisErrors = answer.analysis.filter((f) => f.level === 'Error').map((f) => f.message);
    } else {
      const [, proxy] = machineWithRole(lab.def, 'proxy');
      const model = modelLab();
      const answer = modelAnswer(set.documents, settings, probes, {
        ...model,
        proxy: { ...model.proxy!, ip: proxy.ip },
      });
      verdicts = answer.verdicts;
      output = evidence('sim-model', verdicts, {
        source: 'sim/mesh/model.ts, held to the Istio oracle by the differential corpus',
        pushStatus: answer.pushStatus,
        nacks: answer.nacks,
        rejected: answer.rejected,
        analysis: [],
      });
    }
    for (const line of output.verdicts) ctx.log.info(`mesh.check: ${line}`);

    const problems: string[] = [
      ...output.rejected.map((r) => `rejected: ${r}`),
      ...analysisErrors.map((a) => `istioctl analyze: ${a}`),
      ...output.nacks.map((n) => `Envoy would NACK: ${n}`),
      ...output.conflicts.map((c) => `istiod reports: ${c}`),
    ];
    // Both engines answer one verdict per probe, in the probes' order.
    for (const [i, { key, want }] of expected.entries()) {
      const v = verdicts[i];
      if (!v) problems.push(`${key}: no verdict`);
      else if (v.verdict !== want) problems.push(`${key}: expected ${want}, ${describeVerdict(v)}`);
    }
    if (problems.length > 0) {
      throw new MeshCheckError(`${output.engine} (${output.source}) says:\n${problems.join('\n')}`);
    }
    return output;
  },
});

/** The step's output from an engine's answer. */
function evidence(
  engine: MeshCheckOutput['engine'],
  verdicts: MeshVerdict[],
  answer: {
    source: string;
    pushStatus: Record<string, Record<string, { proxy?: string; message?: string }>>;
    nacks: { sidecar: string[]; gateway: string[] };
    rejected: string[];
    analysis: string[];
  },
): MeshCheckOutput {
  return {
    engine,
    source: answer.source,
    verdicts: verdicts.map(describeVerdict),
    paths: Object.fromEntries(verdicts.map((v) => [`${v.host}:${v.port}`, v.path])),
    conflicts: conflictLines(answer.pushStatus),
    nacks: [
      ...answer.nacks.sidecar.map((n) => `sidecar: ${n}`),
      ...answer.nacks.gateway.map((n) => `gateway: ${n}`),
    ],
    rejected: answer.rejected,
    analysis: answer.analysis,
  };
}

function conflictLines(
  status: Record<string, Record<string, { proxy?: string; message?: string }>>,
): string[] {
  return Object.entries(status).flatMap(([metric, entries]) =>
    Object.entries(entries).map(([key, e]) => `${metric} ${key} (${e.proxy ?? '?'}): ${e.message ?? ''}`),
  );
}
