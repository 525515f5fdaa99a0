/**
 * The list of actions. From it come the playbook schema and validator, the activities the worker
 * registers, and the `tunnel-lab actions` reference. Adding an action is one module plus one line here.
 */
import type { ActionDefinition } from './action.js';
import { execAction } from './exec.js';

export const actions: readonly ActionDefinition[] = checkUnique([execAction]);

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
