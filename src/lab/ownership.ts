/**
 * The labels on every Kubernetes object a run applies: who manages it, which run and which scenario
 * applied it. On a kept cluster a later run finds what earlier runs left by these labels and removes it
 * (`manifest.prune`), so that every scenario starts from a known state.
 */
import { createHash } from 'node:crypto';

export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGER = 'tunnel-lab';
export const RUN_LABEL = 'tunnel-lab.io/run';
export const SCENARIO_LABEL = 'tunnel-lab.io/scenario';

/** A run as the labels name it: its workflow id and, when known, its playbook's name. */
export interface RunRef {
  workflowId: string;
  scenario?: string;
}

const MAX_VALUE = 63;

/**
 * Text as a label value (at most 63 of `A-Za-z0-9._-`, alphanumeric at both ends). A longer text keeps its
 * start and ends in a hash of the whole, so that two long run ids never share a value.
 */
export function labelValue(text: string): string {
  const trim = (value: string) => value.replace(/^[^A-Za-z0-9]+/, '').replace(/[^A-Za-z0-9]+$/, '');
  const cleaned = trim(text.replace(/[^A-Za-z0-9._-]/g, '-'));
  if (cleaned.length <= MAX_VALUE && cleaned === text) return cleaned;
  const hash = createHash('sha256').update(text).digest('hex').slice(0, 10);
  return `${trim(cleaned.slice(0, MAX_VALUE - hash.length - 1))}-${hash}`.replace(/^-/, '');
}

/** The labels an object applied by `run` carries. */
export function ownerLabels(run: RunRef): Record<string, string> {
  return {
    [MANAGED_BY_LABEL]: MANAGER,
    [RUN_LABEL]: labelValue(run.workflowId),
    ...(run.scenario ? { [SCENARIO_LABEL]: labelValue(run.scenario) } : {}),
  };
}

/** A copy of a manifest object with the owner labels added to its own (`metadata.labels`). */
export function withOwnerLabels<T extends Record<string, unknown>>(object: T, run: RunRef): T {
  const metadata = (object.metadata ?? {}) as Record<string, unknown>;
  const labels = (metadata.labels ?? {}) as Record<string, string>;
  return { ...object, metadata: { ...metadata, labels: { ...labels, ...ownerLabels(run) } } };
}

/** The label selector of what tunnel-lab applied: every run's, or every run's but `except`'s. */
export function ownedSelector(except?: RunRef): string {
  const managed = `${MANAGED_BY_LABEL}=${MANAGER}`;
  return except ? `${managed},${RUN_LABEL}!=${labelValue(except.workflowId)}` : managed;
}
