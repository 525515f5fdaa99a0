/**
 * Turns a run's Temporal event history into a {@link RunReport}: the run's inputs, its ScenarioResult and,
 * per step, the attempts with their times and failures. Pure: history in, report out.
 */
import proto from '@temporalio/proto';
import { defaultPayloadConverter } from '@temporalio/common';
import { tsToMs } from '@temporalio/common/lib/time.js';
import {
  isGroup,
  LOAD_PLAYBOOK_ACTIVITY,
  pendingRecord,
  planSteps,
  settleStep,
  stepOfActivity,
  type CellRecord,
  type Plan,
  type RunStatus,
  type ScenarioInput,
  type ScenarioResult,
  type StepOutcome,
  type StepRecord,
} from '../../workflows/types.js';

type History = proto.temporal.api.history.v1.IHistory;
type HistoryEvent = proto.temporal.api.history.v1.IHistoryEvent;
type Failure = proto.temporal.api.failure.v1.IFailure;
type RetryPolicy = proto.temporal.api.common.v1.IRetryPolicy;
type Duration = proto.google.protobuf.IDuration;
/** What `handle.describe()` says about an activity that has not closed yet. */
export type PendingActivity = proto.temporal.api.workflow.v1.IPendingActivityInfo;

export type AttemptOutcome = 'passed' | 'failed' | 'timed-out' | 'cancelled' | 'running';

/** One attempt of a step's activity, as a span of time. */
export interface AttemptSpan {
  /** Attempt number within the step, counted across resumes (a step retried after a pause goes on counting). */
  attempt: number;
  /** The activity execution this attempt belongs to (`<step>` or `<step>#n` after a resume). */
  activityId: string;
  /** Epoch milliseconds. */
  start: number;
  /** Epoch milliseconds; the report's time for attempts still running. */
  end: number;
  outcome: AttemptOutcome;
  /**
   * Temporal's history keeps the times of an activity's last attempt only; earlier attempts are spread over
   * the time before it using the retry policy's backoff, and marked as estimated.
   */
  estimated: boolean;
  error?: string;
}

/** A step of the report: the workflow's record of it plus its attempts. */
export interface StepReport extends StepRecord {
  attemptSpans: AttemptSpan[];
  /** From the plan: the step may fail without failing the run. */
  continueOnError?: boolean;
}

/** Everything a report shows about one run. */
export interface RunReport {
  workflowId: string;
  /** Temporal's run id of this execution. */
  runId: string;
  namespace: string;
  taskQueue: string;
  playbook: string;
  description?: string;
  /** The playbook file as the worker resolved it. */
  file?: string;
  lab?: string;
  /** The lab host whose worker ran the steps, when the run was pinned to one. */
  labHost?: string;
  /** The task queue the steps ran on (the lab host's, or the run's own). */
  stepQueue?: string;
  status: RunStatus;
  /** Temporal's own status: COMPLETED, FAILED, CANCELED, TERMINATED, TIMED_OUT or RUNNING. */
  temporalStatus: string;
  /** ISO times. */
  startedAt: string;
  closedAt?: string;
  /** The workflow's input as started. */
  input: ScenarioInput;
  /** The variables the steps saw (the playbook's defaults with the run's overrides). */
  vars: Record<string, unknown>;
  error?: string;
  /** Link to the run in the Temporal Web UI, when its address is known. */
  uiUrl?: string;
  /** The worker identity that ran the first activity, e.g. `1234@host`. */
  workerIdentity?: string;
  /** Loading and validating the playbook, shown in the timeline before the steps. */
  load?: AttemptSpan[];
  steps: StepReport[];
  /** A matrix run's cells, each with the report of its own run once it started one. */
  cells?: CellReport[];
  /** When the report was built; the end of spans still running. */
  generatedAt: string;
}

/** A matrix run's cell: how it went, and its run's report (none for a cell that never started). */
export interface CellReport extends CellRecord {
  report?: RunReport;
}

export interface BuildOptions {
  workflowId: string;
  /** The execution's run id, as `describe()` gives it; read from the start event otherwise. */
  runId?: string;
  namespace?: string;
  uiUrl?: string;
  /** `raw.pendingActivities` of `handle.describe()`, for runs still going. */
  pending?: readonly PendingActivity[] | null;
  /** The `progress` query's answer, for runs still going (history alone cannot tell skipped or paused). */
  progress?: ScenarioResult;
  /** Epoch milliseconds standing for "now"; the default is the current time. */
  now?: number;
}

/** An activity execution as the history tells it. */
interface ActivityExecution {
  activityId: string;
  type: string;
  scheduledAt: number;
  retry?: RetryPolicy | null;
  startedAt?: number;
  /** Temporal's attempt number of the last attempt (the one the started event records). */
  attempt?: number;
  identity?: string;
  /** The failure of the attempt before the last one. */
  lastFailure?: string;
  closedAt?: number;
  cancelRequestedAt?: number;
  outcome?: Exclude<AttemptOutcome, 'running'>;
  error?: string;
  result?: StepOutcome | Plan;
}

const PendingState = proto.temporal.api.enums.v1.PendingActivityState;
const ms = (ts: Parameters<typeof tsToMs>[0]): number => tsToMs(ts);
const iso = (epochMs: number): string => new Date(epochMs).toISOString();

/** Builds the report of one run from its history (and, for a run still going, what describe and query say). */
export function buildRunReport(history: History, options: BuildOptions): RunReport {
  const now = options.now ?? Date.now();
  const events = history.events ?? [];
  const activities = new Map<string, ActivityExecution>();
  let input: ScenarioInput = { playbook: '?' };
  let startedAt = now;
  let closedAt: number | undefined;
  let temporalStatus = 'RUNNING';
  let runId = '';
  let taskQueue = '';
  let scenario: ScenarioResult | undefined;
  let closeError: string | undefined;

  for (const event of events) {
    const time = ms(event.eventTime);
    const started = event.workflowExecutionStartedEventAttributes;
    if (started) {
      input = (decode(started.input?.payloads?.[0]) as ScenarioInput | undefined) ?? input;
      startedAt = time;
      runId = started.originalExecutionRunId ?? started.firstExecutionRunId ?? '';
      taskQueue = started.taskQueue?.name ?? '';
      continue;
    }
    if (event.activityTaskScheduledEventAttributes) {
      const a = event.activityTaskScheduledEventAttributes;
      activities.set(String(event.eventId), {
        activityId: a.activityId ?? '',
        type: a.activityType?.name ?? '',
        scheduledAt: time,
        retry: a.retryPolicy,
      });
      continue;
    }
    if (handleActivityEvent(event, time, activities)) continue;
    const completed = event.workflowExecutionCompletedEventAttributes;
    if (completed) {
      temporalStatus = 'COMPLETED';
      closedAt = time;
      scenario = decode(completed.result?.payloads?.[0]) as ScenarioResult | undefined;
      continue;
    }
    const failed = event.workflowExecutionFailedEventAttributes;
    if (failed) {
      temporalStatus = 'FAILED';
      closedAt = time;
      const details = failed.failure?.applicationFailureInfo?.details?.payloads?.[0];
      scenario = decode(details) as ScenarioResult | undefined;
      closeError = failed.failure?.message ?? undefined;
      continue;
    }
    if (event.workflowExecutionCanceledEventAttributes) {
      temporalStatus = 'CANCELED';
      closedAt = time;
      continue;
    }
    if (event.workflowExecutionTerminatedEventAttributes) {
      temporalStatus = 'TERMINATED';
      closedAt = time;
      closeError = `terminated: ${event.workflowExecutionTerminatedEventAttributes.reason || 'no reason given'}`;
      continue;
    }
    if (event.workflowExecutionTimedOutEventAttributes) {
      temporalStatus = 'TIMED_OUT';
      closedAt = time;
      closeError = 'the run timed out';
    }
  }

  const end = closedAt ?? now;
  // A workflow does not wait for the activities it cancels, and cannot once it has closed: those have no
  // close event of their own.
  for (const a of activities.values()) {
    if (a.closedAt !== undefined || (closedAt === undefined && a.cancelRequestedAt === undefined)) continue;
    a.closedAt = a.cancelRequestedAt ?? end;
    a.outcome = 'cancelled';
    a.error = 'cancelled';
  }
  const executions = [...activities.values()].sort((a, b) => a.scheduledAt - b.scheduledAt);
  const loads = executions.filter((a) => a.type === LOAD_PLAYBOOK_ACTIVITY);
  const plan = loads.map((a) => a.result as Plan | undefined).find((p) => p !== undefined);
  const pending = pendingByActivity(options.pending);
  const state = scenario ?? options.progress ?? deriveScenario(input, plan, executions, temporalStatus);

  const mayFail = new Set(
    (plan ? [...plan.steps.flatMap((n) => (isGroup(n) ? n.parallel : [n])), ...plan.finally] : [])
      .filter((s) => s.continueOnError)
      .map((s) => s.id),
  );
  const steps: StepReport[] = state.steps.map((record) => {
    const step: StepReport = {
      ...record,
      attemptSpans: stepSpans(
        // The step's own activities: the engine's (loading, the lab's lease) have other types.
        executions.filter((a) => a.type === record.uses && stepOfActivity(a.activityId) === record.id),
        pending,
        end,
      ),
    };
    if (mayFail.has(record.id)) step.continueOnError = true;
    return step;
  });

  const report: RunReport = {
    workflowId: options.workflowId,
    runId: options.runId ?? runId,
    namespace: options.namespace ?? 'default',
    taskQueue,
    playbook: plan?.name ?? state.playbook,
    status: runStatus(state.status, temporalStatus),
    temporalStatus,
    startedAt: iso(startedAt),
    input,
    vars: plan?.vars ?? input.vars ?? {},
    steps,
    generatedAt: iso(now),
  };
  if (closedAt !== undefined) report.closedAt = iso(closedAt);
  if (plan?.description) report.description = plan.description;
  if (plan?.file) report.file = plan.file;
  const lab = plan?.lab ?? input.lab;
  if (lab) report.lab = lab;
  const stepQueue = plan?.stepQueue;
  if (stepQueue) report.stepQueue = stepQueue;
  const labHost =
    input.labHost ?? (stepQueue?.includes('@') ? stepQueue.slice(stepQueue.lastIndexOf('@') + 1) : undefined);
  if (labHost) report.labHost = labHost;
  const error = state.error ?? closeError;
  if (error) report.error = error;
  if (options.uiUrl) report.uiUrl = options.uiUrl;
  const identity = executions.find((a) => a.identity)?.identity;
  if (identity) report.workerIdentity = identity;
  if (loads.length > 0) report.load = stepSpans(loads, pending, end);
  if (state.cells) report.cells = state.cells.map((cell) => ({ ...cell }));
  return report;
}

/** Records started/closed activity events; false when the event is not about an activity. */
function handleActivityEvent(
  event: HistoryEvent,
  time: number,
  activities: Map<string, ActivityExecution>,
): boolean {
  const started = event.activityTaskStartedEventAttributes;
  if (started) {
    const a = activities.get(String(started.scheduledEventId));
    if (a) {
      a.startedAt = time;
      a.attempt = started.attempt ?? 1;
      if (started.identity) a.identity = started.identity;
      if (started.lastFailure) a.lastFailure = failureText(started.lastFailure);
    }
    return true;
  }
  const closes: [{ scheduledEventId?: unknown } | null | undefined, Exclude<AttemptOutcome, 'running'>][] = [
    [event.activityTaskCompletedEventAttributes, 'passed'],
    [event.activityTaskFailedEventAttributes, 'failed'],
    [event.activityTaskTimedOutEventAttributes, 'timed-out'],
    [event.activityTaskCanceledEventAttributes, 'cancelled'],
  ];
  for (const [attributes, outcome] of closes) {
    if (!attributes) continue;
    const a = activities.get(String(attributes.scheduledEventId));
    if (!a) return true;
    a.closedAt = time;
    a.outcome = outcome;
    const completed = event.activityTaskCompletedEventAttributes;
    if (completed) a.result = decode(completed.result?.payloads?.[0]) as StepOutcome | Plan | undefined;
    const failure =
      event.activityTaskFailedEventAttributes?.failure ?? event.activityTaskTimedOutEventAttributes?.failure;
    if (failure) a.error = failureText(failure);
    if (outcome === 'cancelled') a.error = 'cancelled';
    return true;
  }
  const cancel = event.activityTaskCancelRequestedEventAttributes;
  if (cancel) {
    const a = activities.get(String(cancel.scheduledEventId));
    if (a) a.cancelRequestedAt = time;
    return true;
  }
  return false;
}

/** The attempts of one step, over all its activity executions (one per resume). */
function stepSpans(
  executions: ActivityExecution[],
  pending: Map<string, PendingActivity>,
  end: number,
): AttemptSpan[] {
  const spans: AttemptSpan[] = [];
  for (const a of executions) {
    const base = spans.length;
    const live = a.closedAt === undefined ? pending.get(a.activityId) : undefined;
    const attempts = Math.max(1, a.attempt ?? live?.attempt ?? 1);
    const lastStart =
      a.startedAt ??
      (live?.lastStartedTime ? ms(live.lastStartedTime) : undefined) ??
      (attempts === 1 ? a.scheduledAt : end);
    const lastFailure = a.lastFailure ?? (live?.lastFailure ? failureText(live.lastFailure) : undefined);
    spans.push(...earlierAttempts(a, attempts - 1, lastStart, lastFailure, base));
    const span: AttemptSpan = {
      attempt: base + attempts,
      activityId: a.activityId,
      start: lastStart,
      end: a.closedAt ?? end,
      outcome: a.outcome ?? 'running',
      estimated: false,
    };
    if (a.error) span.error = a.error;
    // A retry waiting for its backoff has no current attempt yet: the span shows the wait.
    if (!a.closedAt && live?.state === PendingState.PENDING_ACTIVITY_STATE_SCHEDULED && attempts > 1) {
      span.error = 'waiting to retry';
    }
    spans.push(span);
  }
  return spans;
}

/**
 * Spreads the attempts before the last one over [scheduled, last start]: the retry policy gives the
 * backoff between them; what remains is shared equally. The history records neither their ends nor, past
 * the first, their starts, so these spans are estimates.
 */
function earlierAttempts(
  a: ActivityExecution,
  count: number,
  lastStart: number,
  lastFailure: string | undefined,
  base: number,
): AttemptSpan[] {
  if (count <= 0) return [];
  const initial = durationMs(a.retry?.initialInterval) ?? 1000;
  const coefficient = a.retry?.backoffCoefficient || 2;
  const maximum = durationMs(a.retry?.maximumInterval) ?? initial * 100;
  const delays = Array.from({ length: count }, (_, k) => Math.min(initial * coefficient ** k, maximum));
  const waiting = delays.reduce((sum, d) => sum + d, 0);
  const running = Math.max(0, lastStart - a.scheduledAt - waiting) / count;
  const spans: AttemptSpan[] = [];
  let cursor = a.scheduledAt;
  for (let k = 0; k < count; k += 1) {
    const span: AttemptSpan = {
      attempt: base + k + 1,
      activityId: a.activityId,
      start: cursor,
      end: Math.min(cursor + running, lastStart),
      outcome: 'failed',
      estimated: true,
    };
    if (k === count - 1 && lastFailure) span.error = lastFailure;
    spans.push(span);
    cursor = span.end + delays[k]!;
  }
  return spans;
}

/** For runs without a ScenarioResult (cancelled, terminated, still running): the plan plus what ran. */
function deriveScenario(
  input: ScenarioInput,
  plan: Plan | undefined,
  executions: ActivityExecution[],
  temporalStatus: string,
): ScenarioResult {
  const status: RunStatus =
    temporalStatus === 'RUNNING' ? 'running' : temporalStatus === 'CANCELED' ? 'cancelled' : 'failed';
  const state: ScenarioResult = { playbook: plan?.name ?? input.playbook, status, steps: [] };
  if (!plan) return state;
  for (const { step, phase, group } of planSteps(plan)) {
    const own = executions.filter((a) => a.type === step.uses && stepOfActivity(a.activityId) === step.id);
    const record = pendingRecord(step, phase, group);
    const last = own.at(-1);
    if (last) {
      record.startedAt = iso(last.scheduledAt);
      // Each execution settles the record as the workflow did when it ended; the last may still run.
      for (const a of own) {
        const attempts = a.attempt ?? 1;
        if (a.outcome === undefined) {
          record.status = 'running';
          record.attempts += attempts;
        } else if (a.outcome === 'passed') {
          const result = a.result as StepOutcome | undefined;
          settleStep(record, {
            outcome: 'passed',
            attempts,
            output: result?.output,
            evidence: result?.evidence,
            skipped: result?.skipped,
          });
        } else if (a.outcome === 'cancelled') {
          settleStep(record, { outcome: 'cancelled' });
        } else {
          settleStep(record, { outcome: 'failed', attempts, error: a.error ?? 'failed' });
        }
      }
      const closed = own.filter((a) => a.closedAt !== undefined);
      if (closed.length > 0) {
        record.durationMs = closed.reduce((n, a) => n + (a.closedAt! - a.scheduledAt), 0);
      }
    } else if (status === 'cancelled' && phase === 'main') {
      record.status = 'cancelled';
    }
    state.steps.push(record);
  }
  if (status === 'cancelled') state.error = 'the run was cancelled';
  return state;
}

function runStatus(status: RunStatus, temporalStatus: string): RunStatus {
  if (temporalStatus === 'RUNNING') return status;
  if (temporalStatus === 'COMPLETED') return 'passed';
  if (temporalStatus === 'CANCELED') return 'cancelled';
  return 'failed';
}

function pendingByActivity(
  pending: readonly PendingActivity[] | null | undefined,
): Map<string, PendingActivity> {
  return new Map((pending ?? []).map((p) => [p.activityId ?? '', p]));
}

/** `ExpectationError: exit code 1, expected 0`, as the workflow words step errors. */
export function failureText(failure: Failure): string {
  const type = failure.applicationFailureInfo?.type;
  if (failure.timeoutFailureInfo) {
    const kind = (proto.temporal.api.enums.v1.TimeoutType[failure.timeoutFailureInfo.timeoutType ?? 0] ?? '')
      .replace(/^TIMEOUT_TYPE_/, '')
      .toLowerCase()
      .replace(/_/g, '-');
    return `timeout (${kind || 'unknown'}): ${failure.message ?? ''}`.trim();
  }
  return type ? `${type}: ${failure.message ?? ''}` : (failure.message ?? 'failed');
}

function durationMs(duration: Duration | null | undefined): number | undefined {
  if (!duration) return undefined;
  const value = Number(duration.seconds ?? 0) * 1000 + Math.floor((duration.nanos ?? 0) / 1e6);
  return value > 0 ? value : undefined;
}

function decode(payload: proto.temporal.api.common.v1.IPayload | null | undefined): unknown {
  if (!payload) return undefined;
  try {
    return defaultPayloadConverter.fromPayload(payload);
  } catch {
    return undefined;
  }
}
