/** Client-side helpers shared by the CLI, the bench and tests. */
import path from 'node:path';
import {
  ApplicationFailure,
  Client,
  Connection,
  WorkflowFailedError,
  type WorkflowHandle,
} from '@temporalio/client';
import {
  PROGRESS_QUERY,
  SCENARIO_FAILED,
  RESUME,
  WORKFLOW_TYPE,
  type ResumeAction,
  type ResumeRequest,
  type Plan,
  type ScenarioInput,
  type ScenarioResult,
} from '../workflows/types.js';
import { PLAYBOOK_ATTRIBUTE } from '../workflows/search-attributes.js';
import { forWebUi } from '../workflows/details.js';

export async function connectClient(address: string, namespace: string): Promise<Client> {
  const connection = await Connection.connect({ address });
  return new Client({ connection, namespace });
}

/** A readable, unique workflow id: `<playbook>-<UTC time>-<random>`. */
export function newRunId(playbook: string): string {
  const base = playbook
    .replace(/^.*\//, '')
    .replace(/\.ya?ml$/, '')
    .replace(/[^A-Za-z0-9-]/g, '-');
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-');
  return `${base}-${stamp}-${Math.random().toString(36).slice(2, 6)}`;
}

/** What the Web UI shows at the top of a run: one line, and details in markdown. */
export interface RunLabel {
  summary: string;
  details?: string;
}

/** The Web UI's summary of a run (playbook, lab) and its details (description, variables). */
export function runLabel(plan: Plan, input: ScenarioInput): RunLabel {
  const lab = input.lab ?? plan.lab;
  const vars = Object.entries(plan.vars).map(
    ([name, value]) =>
      `| ${name} | ${JSON.stringify(input.vars && name in input.vars ? input.vars[name] : value)} |`,
  );
  return {
    summary: lab ? `${plan.name} on lab ${path.basename(lab).replace(/\.ya?ml$/, '')}` : plan.name,
    details: forWebUi(
      [
        plan.description ?? '',
        '',
        ...(vars.length > 0 ? ['| variable | value |', '| --- | --- |', ...vars] : []),
      ].join('\n'),
    ),
  };
}

export async function startScenario(
  client: Client,
  taskQueue: string,
  input: ScenarioInput,
  workflowId = newRunId(input.playbook),
  label?: RunLabel,
): Promise<WorkflowHandle> {
  return client.workflow.start(WORKFLOW_TYPE, {
    taskQueue,
    workflowId,
    args: [input],
    // Set at the start too, so that a run no worker has picked up yet still shows its playbook in lists.
    typedSearchAttributes: [{ key: PLAYBOOK_ATTRIBUTE, value: playbookName(input.playbook) }],
    ...(label ? { staticSummary: label.summary } : {}),
    ...(label?.details ? { staticDetails: label.details } : {}),
  });
}

export async function queryProgress(handle: WorkflowHandle): Promise<ScenarioResult> {
  return handle.query<ScenarioResult>(PROGRESS_QUERY);
}

/**
 * The progress of a running run, or undefined when no answer comes within `ms`: a run answers its query
 * only while a worker serves it, and the server holds the query for a worker that is not there.
 */
export async function progressWithin(
  handle: WorkflowHandle,
  ms: number,
): Promise<ScenarioResult | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)));
  try {
    return await Promise.race([queryProgress(handle).catch(() => undefined), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The result a failed run carries in its ScenarioFailed failure, if it is one. */
export function failedScenario(err: WorkflowFailedError): ScenarioResult | undefined {
  const cause = err.cause;
  if (!(cause instanceof ApplicationFailure) || cause.type !== SCENARIO_FAILED) return undefined;
  return cause.details?.[0] as ScenarioResult | undefined;
}

/** Settles a run: the result of a passing run, or the result carried by a failed or cancelled one. */
export async function scenarioOutcome(handle: WorkflowHandle): Promise<ScenarioResult> {
  try {
    return (await handle.result()) as ScenarioResult;
  } catch (err) {
    if (!(err instanceof WorkflowFailedError)) throw err;
    const failed = failedScenario(err);
    if (failed) return failed;
    // Cancelled runs carry no details; ask the (replayed) workflow for its final state.
    try {
      return await queryProgress(handle);
    } catch {
      return { playbook: '?', status: 'failed', steps: [], error: err.cause?.message ?? err.message };
    }
  }
}

export async function resumeScenario(handle: WorkflowHandle, action: ResumeAction): Promise<string> {
  return handle.executeUpdate<string, [ResumeRequest]>(RESUME, { args: [{ action }] });
}

/** A playbook's name as the run's TunnelPlaybook attribute holds it: `tls-passthrough`, also for a file path. */
function playbookName(ref: string): string {
  return path.basename(ref).replace(/\.ya?ml$/, '');
}
