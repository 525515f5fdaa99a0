/**
 * The list of actions. From it come the playbook schema and validator, the activities the worker
 * registers, and the `tunnel-lab actions` reference. Adding an action is one module plus one line here.
 */
import * as errors from '../src/errors.js';
import type { TunnelLabError } from '../src/errors.js';
import { isDuration, toMs } from '../src/duration.js';
import type { ActionDefinition } from './action.js';
import { certsConfigmapAction } from './certs-configmap.js';
import { certsGenerateAction } from './certs-generate.js';
import { execAction } from './exec.js';
import { istioInstallAction } from './istio-install.js';
import { gatewayDeployAction } from './gateway-deploy.js';
import { kubeLabelAction } from './kube-label.js';
import { kubeNamespaceAction } from './kube-namespace.js';
import { kubeconfigFetchAction } from './kubeconfig-fetch.js';
import { logExpectAction } from './log-expect.js';
import { logMarkAction } from './log-mark.js';
import { manifestApplyAction } from './manifest-apply.js';
import { manifestPruneAction } from './manifest-prune.js';
import { meshCheckAction } from './mesh-check.js';
import { meshWaitAction } from './mesh-wait.js';
import { probeCurlAction } from './probe-curl.js';
import { proxyCredentialAction } from './proxy-credential.js';
import { toolsCheckAction } from './tools-check.js';
import { vmDestroyAction } from './vm-destroy.js';
import { vmHaltAction } from './vm-halt.js';
import { vmTeardownAction } from './vm-teardown.js';
import { vmUpAction } from './vm-up.js';

export const actions: readonly ActionDefinition[] = checked([
  execAction,
  toolsCheckAction,
  vmUpAction,
  vmHaltAction,
  vmDestroyAction,
  vmTeardownAction,
  certsGenerateAction,
  certsConfigmapAction,
  kubeconfigFetchAction,
  istioInstallAction,
  kubeLabelAction,
  kubeNamespaceAction,
  gatewayDeployAction,
  manifestApplyAction,
  manifestPruneAction,
  meshCheckAction,
  meshWaitAction,
  probeCurlAction,
  proxyCredentialAction,
  logMarkAction,
  logExpectAction,
]);

/** The project's error classes by name, and whether each is non-retryable by itself. */
const ERROR_CLASSES = new Map(
  Object.values(errors)
    .filter(
      (value): value is typeof TunnelLabError =>
        typeof value === 'function' && value.prototype instanceof Error,
    )
    .map((cls) => [cls.name, cls.prototype.nonRetryable]),
);

/** What is wrong with an action definition, if anything (the registry refuses to load with it). */
export function definitionProblems(
  action: Pick<ActionDefinition, 'name' | 'policy' | 'examples' | 'idempotent'>,
): string[] {
  const problems: string[] = [];
  const { policy } = action;
  if (!/^[a-z]+(\.[a-z]+)?$/.test(action.name))
    problems.push('its name must be domain.verb, e.g. probe.curl');
  if (!isDuration(policy.timeout) || !isDuration(policy.maxTimeout))
    problems.push('its timeouts must be durations');
  else if (toMs(policy.timeout) > toMs(policy.maxTimeout))
    problems.push(`its timeout ${policy.timeout} exceeds its maxTimeout ${policy.maxTimeout}`);
  if (policy.retry.attempts < 1 || policy.retry.attempts > policy.maxAttempts)
    problems.push(
      `its retry.attempts ${policy.retry.attempts} is not within 1..maxAttempts (${policy.maxAttempts})`,
    );
  if (
    policy.heartbeatTimeout &&
    isDuration(policy.heartbeatTimeout) &&
    toMs(policy.heartbeatTimeout) > toMs(policy.timeout)
  )
    problems.push(`its heartbeatTimeout ${policy.heartbeatTimeout} exceeds its timeout ${policy.timeout}`);
  for (const name of policy.nonRetryable ?? []) {
    const known = ERROR_CLASSES.get(name);
    if (known === undefined)
      problems.push(`nonRetryable names ${name}, which is no error class of src/errors.ts`);
    else if (known) problems.push(`nonRetryable names ${name}, which is non-retryable by its class already`);
  }
  if (action.idempotent !== true) {
    if (typeof action.idempotent !== 'string' || action.idempotent.trim() === '')
      problems.push('idempotent must be true or say why the action is not');
    else if (policy.retry.attempts !== 1)
      problems.push(
        `it is not idempotent, so a step must ask for retries: its retry.attempts must be 1, not ${policy.retry.attempts}`,
      );
  }
  if (action.examples.length === 0) problems.push('it has no example');
  return problems.map((p) => `action ${action.name}: ${p}`);
}

function checked(list: ActionDefinition[]): ActionDefinition[] {
  const problems = list.flatMap(definitionProblems);
  const seen = new Set<string>();
  for (const action of list) {
    if (seen.has(action.name)) problems.push(`two actions are named ${action.name}`);
    seen.add(action.name);
  }
  if (problems.length > 0) throw new Error(`the action registry is inconsistent:\n${problems.join('\n')}`);
  return list;
}
