/**
 * The list of actions. From it come the playbook schema and validator, the activities the worker
 * registers, and the `tunnel-lab actions` reference. Adding an action is one module plus one line here.
 */
import type { ActionDefinition } from './action.js';
import { certsConfigmapAction } from './certs-configmap.js';
import { certsGenerateAction } from './certs-generate.js';
import { execAction } from './exec.js';
import { istioInstallAction } from './istio-install.js';
import { kubeLabelAction } from './kube-label.js';
import { kubeconfigFetchAction } from './kubeconfig-fetch.js';
import { logExpectAction } from './log-expect.js';
import { logMarkAction } from './log-mark.js';
import { manifestApplyAction } from './manifest-apply.js';
import { manifestPruneAction } from './manifest-prune.js';
import { meshCheckAction } from './mesh-check.js';
import { meshWaitAction } from './mesh-wait.js';
import { probeCurlAction } from './probe-curl.js';
import { toolsCheckAction } from './tools-check.js';
import { vmDestroyAction } from './vm-destroy.js';
import { vmHaltAction } from './vm-halt.js';
import { vmTeardownAction } from './vm-teardown.js';
import { vmUpAction } from './vm-up.js';

export const actions: readonly ActionDefinition[] = checkUnique([
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
  manifestApplyAction,
  manifestPruneAction,
  meshCheckAction,
  meshWaitAction,
  probeCurlAction,
  logMarkAction,
  logExpectAction,
]);

const byName = new Map(actions.map((a) => [a.name, a]));

export function findAction(name: string): ActionDefinition | undefined {
  return byName.get(name);
}

export function actionNames(): string[] {
  return [...byName.keys()].sort();
}

function checkUnique(list: ActionDefinition[]): ActionDefinition[] {
  const seen = new Set<string>();
  for (const action of list) {
    if (seen.has(action.name)) throw new Error(`two actions are named ${action.name}`);
    seen.add(action.name);
  }
  return list;
}
