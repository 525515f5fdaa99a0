import { z } from 'zod';
import { isDuration } from '../src/duration.js';
import { ownEgressGateway } from '../src/lab/definition.js';
import { defineAction, notApplicable } from './action.js';
import { manifestApplyAction, type ManifestApplyOutput } from './manifest-apply.js';

/** The template of the run's own egress gateway, under manifests/. */
export const EGRESS_GATEWAY_MANIFEST = 'common/egress-gateway.yaml';

/** Input of gateway.deploy. */
export const gatewayDeployInput = z
  .object({
    rolloutTimeout: z
      .string()
      .refine(isDuration, 'must be a duration such as 120s')
      .default('120s')
      .describe("How long to wait for the gateway's rollout."),
  })
  .strict();

/**
 * The run's own egress gateway, in the scenario's namespace, on a lab that asks for one (`egressGateway:
 * own`); a lab whose scenarios use Istio's shared egress gateway skips the step.
 */
export const gatewayDeployAction = defineAction({
  name: 'gateway.deploy',
  description:
    "Deploy an egress gateway of the run's own in the lab's namespace (manifests/common/egress-gateway.yaml, " +
    "Istio's gateway injection) and wait for it, when the lab says `egressGateway: own`; skipped on labs that " +
    "use Istio's shared egress gateway in istio-system.",
  input: gatewayDeployInput,
  policy: {
    timeout: '5m',
    maxTimeout: '20m',
    heartbeatTimeout: '30s',
    retry: { attempts: 3, initialInterval: '5s', backoff: 2, maxInterval: '1m' },
    maxAttempts: 10,
  },
  idempotent: true,
  summary: () => 'gateway.deploy',
  evidence: (output: ManifestApplyOutput) => output.rollouts,
  examples: [
    {
      description: "The run's own egress gateway, if the lab wants one",
      yaml: 'id: gateway\nuses: gateway.deploy',
    },
  ],
  changes: async (input, ctx) => {
    if (!ownEgressGateway(ctx.lab)) return [];
    return manifestApplyAction.changes(
      manifestApplyAction.input.parse({ files: [EGRESS_GATEWAY_MANIFEST] }),
      ctx,
    );
  },
  create: (deps) => {
    const apply = manifestApplyAction.create(deps);
    return async (input, ctx) => {
      const lab = await ctx.lab();
      const own = ownEgressGateway(lab.def);
      if (!own) {
        return notApplicable(
          `the lab ${lab.def.name} uses Istio's shared egress gateway (egressGateway: ${lab.def.egressGateway})`,
        );
      }
      return apply(
        manifestApplyAction.input.parse({
          files: [EGRESS_GATEWAY_MANIFEST],
          waitFor: [{ name: own.service, namespace: own.namespace }],
          rolloutTimeout: input.rolloutTimeout,
        }),
        ctx,
      );
    };
  },
});
