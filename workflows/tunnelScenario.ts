/**
 * The `tunnelScenario` workflow: a small, deterministic interpreter of a validated playbook plan.
 * All I/O happens in activities; this file only decides which activity runs next.
 */
import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  ChildWorkflowCancellationType,
  condition,
  defineQuery,
  defineSignal,
  defineUpdate,
  getExternalWorkflowHandle,
  isCancellation,
  ParentClosePolicy,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  startChild,
  upsertSearchAttributes,
  workflowInfo,
  type ActivityOptions,
  type ChildWorkflowHandle,
} from '@temporalio/workflow';
import { RetryState, WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { labLease, releaseLab } from './labLease.js';
import { cellPausedSignal, runCells } from './matrix.js';
import { PLAYBOOK_ATTRIBUTE, STATUS_ATTRIBUTE, STEP_ATTRIBUTE } from './search-attributes.js';
import {
  activityIdOf,
  isGroup,
  RESUME_ACTIONS,
  SCENARIO_FAILED,
  settleStep,
  LOAD_PLAYBOOK_ACTIVITY,
  pendingRecord,
  planSteps,
  PROGRESS_QUERY,
  RESUME,
  type CellPause,
  type Plan,
  type PlanNode,
  type PlanMatrix,
  type PlanStep,
  type ResumeAction,
  type ResumeRequest,
  type RunStatus,
  type ScenarioInput,
  type ScenarioResult,
  type LabHolder,
  type LabIdentity,
  type StepMeta,
  type StepOutcome,
  type StepRecord,
} from './types.js';
import { renderDetails } from './details.js';

export const progressQuery = defineQuery<ScenarioResult>(PROGRESS_QUERY);
export const resumeUpdate = defineUpdate<string, [ResumeRequest]>(RESUME);
export const resumeSignal = defineSignal<[ResumeRequest]>(RESUME);

type Loader = Record<typeof LOAD_PLAYBOOK_ACTIVITY, (input: ScenarioInput) => Promise<Plan>>;
type ActionActivity = (input: Record<string, unknown>, meta: StepMeta) => Promise<StepOutcome>;

// Loading is cheap and its failures (a bad file) are final, so it gets a short, bounded policy.
const loader = proxyActivities<Loader>({
  startToCloseTimeout: '30s',
  retry: { maximumAttempts: 3, nonRetryableErrorTypes: ['PlaybookError'] },
  summary: 'load and validate the playbook',
});

interface LeaseActivities {
  labIdentity(meta: StepMeta): Promise<LabIdentity>;
  labHolder(leaseId: string): Promise<LabHolder>;
  awaitLabRelease(leaseId: string): Promise<void>;
}

/** Which lab the steps drive: read like the playbook, on the host whose worker runs the steps. */
function labIdentityOn(taskQueue: string | undefined): LeaseActivities['labIdentity'] {
  return proxyActivities<LeaseActivities>({
    startToCloseTimeout: '30s',
    retry: { maximumAttempts: 3, nonRetryableErrorTypes: ['PlaybookError', 'LabConfigError'] },
    summary: 'which lab the steps drive',
    ...(taskQueue ? { taskQueue } : {}),
  }).labIdentity;
}

const leases = proxyActivities<LeaseActivities>({ startToCloseTimeout: '30s', summary: 'who holds the lab' });
// A run may wait for its lab as long as another run takes on it: hours on real VMs.
const waiting = proxyActivities<LeaseActivities>({
  startToCloseTimeout: '24h',
  heartbeatTimeout: '30s',
  retry: { maximumInterval: '30s' },
  summary: 'wait for the lab',
});

/** Patch id: a run that drives a shared lab holds its lease (workflows/labLease.ts) from its first step on. */
const LAB_LEASE = 'lab-lease';

/** Runs a playbook. Passing runs return their result; failed runs fail with the result as the failure's details. */
export async function tunnelScenario(input: ScenarioInput): Promise<ScenarioResult> {
  const state: ScenarioResult = { playbook: input.playbook, status: 'running', steps: [] };
  const records = new Map<string, StepRecord>();
  let decision: ResumeAction | undefined;

  setHandler(progressQuery, () => state);
  setHandler(
    resumeUpdate,
    (request) => {
      decision = request.action;
      return `${request.action} requested for step ${state.pausedStep ?? ''}`;
    },
    {
      validator: (request: ResumeRequest | undefined) => {
        if (!request || !RESUME_ACTIONS.includes(request.action)) {
          throw new Error(`resume needs an action: one of ${RESUME_ACTIONS.join(', ')}`);
        }
        if (state.status !== 'paused') throw new Error(`the run is ${state.status}, not paused`);
      },
    },
  );
  // The signal exists for callers that cannot send updates; out-of-place signals are ignored, not fatal.
  setHandler(resumeSignal, (request) => {
    if (state.status === 'paused' && request && RESUME_ACTIONS.includes(request.action)) {
      decision = request.action;
    }
  });

  const publish = (): void => {
    setCurrentDetails(renderDetails(state, workflowInfo().workflowId));
  };
  const setStatus = (status: RunStatus): void => {
    state.status = status;
    upsertSearchAttributes([{ key: STATUS_ATTRIBUTE, value: status }]);
    publish();
  };
  /** Marks the run failed; the failure it ends with carries the run's state as its details. */
  const failed = (message: string, cause?: Error): ApplicationFailure => {
    setStatus('failed');
    return ApplicationFailure.create({
      type: SCENARIO_FAILED,
      message,
      nonRetryable: true,
      details: [state],
      ...(cause ? { cause } : {}),
    });
  };

  upsertSearchAttributes([
    { key: PLAYBOOK_ATTRIBUTE, value: input.playbook },
    { key: STATUS_ATTRIBUTE, value: 'running' },
  ]);
  let plan: Plan;
  try {
    plan = await loader.loadPlaybook(input);
  } catch (err) {
    if (isCancellation(err)) throw err;
    state.error = messageOf(err);
    throw failed(`playbook ${input.playbook} could not be loaded: ${state.error}`, err as Error);
  }
  state.playbook = plan.name;
  if (plan.changes) state.changes = plan.changes;
  upsertSearchAttributes([{ key: PLAYBOOK_ATTRIBUTE, value: plan.name }]);
  if (plan.matrix) return runMatrix(plan.matrix);
  for (const { step, phase, group } of planSteps(plan)) {
    const record = pendingRecord(step, phase, group);
    records.set(step.id, record);
    state.steps.push(record);
  }
  publish();

  let lease: ChildWorkflowHandle<typeof labLease> | undefined;
  if (plan.usesLab && patched(LAB_LEASE)) {
    try {
      lease = await holdLab(plan);
    } catch (err) {
      // Nothing ran on the lab, so nothing needs its `finally` steps.
      const cancelled = isCancellation(err);
      for (const record of records.values()) record.status = cancelled ? 'cancelled' : 'skipped';
      state.waitingForLab = undefined;
      state.error = cancelled ? 'the run was cancelled before it had its lab' : messageOf(err);
      if (cancelled) {
        setStatus('cancelled');
        throw err;
      }
      throw failed(`playbook ${plan.name} could not take its lab: ${state.error}`, err as Error);
    }
  }

  const pauseOnFailure = input.pauseOnFailure ?? plan.onFailure === 'pause';
  let firstFailure: Error | undefined;
  let cancellation: Error | undefined;
  try {
    for (const node of plan.steps) {
      if (!(await runNode(node))) break;
    }
  } catch (err) {
    if (!isCancellation(err)) throw err;
    cancellation = err as Error;
    state.error = 'the run was cancelled';
    for (const record of records.values()) {
      if (record.phase === 'main' && record.status === 'pending') record.status = 'cancelled';
    }
  }

  // Finally steps run whatever happened above, and a cancellation must not interrupt them.
  await CancellationScope.nonCancellable(async () => {
    for (const step of plan.finally) {
      if (!(await runStep(step)) && !state.error) state.error = `finally step ${step.id} failed`;
    }
  });

  if (lease) {
    const held = lease;
    await CancellationScope.nonCancellable(async () => {
      await held.signal(releaseLab);
      await held.result();
    });
  }

  state.pausedStep = undefined;
  upsertSearchAttributes([{ key: STEP_ATTRIBUTE, value: '' }]);
  if (cancellation) {
    setStatus('cancelled');
    throw cancellation;
  }
  // The first step failure is the cause, with its own chain (ActivityFailure → the action's typed failure).
  if (state.error) throw failed(`playbook ${plan.name} failed: ${state.error}`, firstFailure);
  setStatus('passed');
  return state;

  /** A matrix run: its cells are child runs, and it passes when every cell passed. */
  async function runMatrix(matrix: PlanMatrix): Promise<ScenarioResult> {
    try {
      await runCells(input, matrix, state, publish);
    } catch (err) {
      if (!isCancellation(err)) throw err;
      state.error = 'the run was cancelled';
      setStatus('cancelled');
      throw err;
    }
    const cells = state.cells ?? [];
    const notPassed = cells.filter((c) => c.status !== 'passed');
    if (CancellationScope.current().consideredCancelled) {
      state.error = 'the run was cancelled';
      setStatus('cancelled');
      throw new CancelledFailure('the run was cancelled');
    }
    if (notPassed.length > 0) {
      state.error = `${notPassed.length} of ${cells.length} cells did not pass: ${notPassed.map((c) => `${c.id} (${c.status})`).join(', ')}`;
      throw failed(`playbook ${state.playbook} failed: ${state.error}`);
    }
    setStatus('passed');
    return state;
  }

  /**
   * Takes the lab's lease when the lab is shared, waiting while another run holds it; the lease ends with
   * this run. Undefined when the lab is the run's own.
   */
  async function holdLab(plan: Plan): Promise<ChildWorkflowHandle<typeof labLease> | undefined> {
    const identity = await labIdentityOn(plan.stepQueue)(metaOf(plan));
    const leaseId = identity.leaseId;
    if (!leaseId) return undefined;
    const { workflowId } = workflowInfo();
    for (;;) {
      try {
        // Once started the lease is this run's until it releases it: a cancellation of the run must not
        // end it while `finally` steps still use the lab.
        const handle = await CancellationScope.nonCancellable(() =>
          startChild(labLease, {
            workflowId: leaseId,
            args: [{ lab: identity.name, where: identity.where, holder: workflowId }],
            parentClosePolicy: ParentClosePolicy.TERMINATE,
            cancellationType: ChildWorkflowCancellationType.ABANDON,
            staticSummary: `lab ${identity.name} (${identity.where})`,
          }),
        );
        if (state.waitingForLab) {
          state.waitingForLab = undefined;
          publish();
        }
        return handle;
      } catch (err) {
        if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      }
      const holder = await leases.labHolder(leaseId);
      if (!holder.held) continue;
      state.waitingForLab = { lab: identity.name, ...(holder.heldBy ? { heldBy: holder.heldBy } : {}) };
      publish();
      await waiting.awaitLabRelease(leaseId);
    }
  }

  /** Runs a step or a group until it passes or is given up; false means the run must stop. */
  async function runNode(node: PlanNode): Promise<boolean> {
    const steps = isGroup(node) ? node.parallel : [node];
    for (;;) {
      const pending = steps.filter((s) => !DONE.includes(records.get(s.id)?.status ?? 'pending'));
      const results = await Promise.all(pending.map((s) => runStep(s)));
      if (results.every(Boolean)) return true;
      const failed = pending.filter((_, i) => !results[i]);
      const reason = failed.map((s) => `step ${s.id}: ${records.get(s.id)?.error ?? 'failed'}`).join('; ');
      if (!pauseOnFailure) {
        state.error = reason;
        return false;
      }
      const action = await pause(node.id, reason);
      if (action === 'retry') continue;
      if (action === 'skip') {
        for (const s of failed) records.get(s.id)!.status = 'skipped';
        return true;
      }
      state.error = `aborted after ${reason}`;
      return false;
    }
  }

  async function pause(stepId: string, reason: string): Promise<ResumeAction> {
    decision = undefined;
    state.pausedStep = stepId;
    state.error = reason;
    setStatus('paused');
    await tellMatrix({ step: stepId, reason });
    await condition(() => decision !== undefined);
    const action = decision!;
    decision = undefined;
    state.pausedStep = undefined;
    state.error = undefined;
    setStatus('running');
    await tellMatrix(undefined);
    return action;
  }

  /** A cell's run tells its matrix run that it paused (or runs again), so that the matrix's views say so. */
  async function tellMatrix(paused: CellPause | undefined): Promise<void> {
    const parent = workflowInfo().parent;
    if (!input.cell || !parent || !patched('cell-paused')) return;
    try {
      await getExternalWorkflowHandle(parent.workflowId, parent.runId).signal(cellPausedSignal, {
        workflowId: workflowInfo().workflowId,
        ...(paused ? { paused } : {}),
      });
    } catch {
      // The matrix run is gone (terminated): nothing to tell; the cell still waits for its answer.
    }
  }

  /** One activity execution (with the action's retries); true when it passed or may fail without stopping. */
  async function runStep(step: PlanStep): Promise<boolean> {
    const record = records.get(step.id)!;
    const started = Date.now();
    record.status = 'running';
    record.startedAt ??= new Date(started).toISOString();
    record.error = undefined;
    upsertSearchAttributes([{ key: STEP_ATTRIBUTE, value: step.id }]);
    publish();
    try {
      const outcome = await activityFor(step, record.attempts, plan.stepQueue)(step.with, metaOf(plan));
      settleStep(record, {
        outcome: 'passed',
        attempts: outcome.attempt,
        output: outcome.output,
        evidence: outcome.evidence,
        skipped: outcome.skipped,
      });
      return true;
    } catch (err) {
      if (isCancellation(err)) {
        settleStep(record, { outcome: 'cancelled' });
        throw err;
      }
      settleStep(record, { outcome: 'failed', attempts: attemptsOf(err, step), error: messageOf(err) });
      if (!step.continueOnError) firstFailure ??= err as Error;
      return step.continueOnError;
    } finally {
      record.durationMs = (record.durationMs ?? 0) + (Date.now() - started);
      publish();
    }
  }
}

/** The states of a step that a retried group does not run again. */
const DONE: readonly StepRecord['status'][] = ['passed', 'skipped'];

/** Patch id: cancelled steps are waited for (see activityFor). */
const WAIT_FOR_CANCELLED_STEPS = 'wait-for-cancelled-steps';

function activityFor(
  step: PlanStep,
  previousAttempts: number,
  taskQueue: string | undefined,
): ActionActivity {
  const options: ActivityOptions = {
    // A retried step (after a resume) needs a fresh id; the suffix keeps the UI readable.
    activityId: activityIdOf(step.id, previousAttempts),
    startToCloseTimeout: step.options.startToCloseTimeout,
    retry: step.options.retry,
    // The Web UI's timeline and event list show this line: the step id first, then what it does.
    summary: `${step.id}: ${step.summary}`,
    // A cancelled step is over only when its activity says so (its command stopped), so that `finally`
    // (the teardown) never runs beside it; bounded by the heartbeat timeout when its worker is gone. Runs
    // started before this rule keep the one they were recorded with.
    cancellationType: patched(WAIT_FOR_CANCELLED_STEPS)
      ? ActivityCancellationType.WAIT_CANCELLATION_COMPLETED
      : ActivityCancellationType.TRY_CANCEL,
  };
  if (step.options.heartbeatTimeout) options.heartbeatTimeout = step.options.heartbeatTimeout;
  if (taskQueue) options.taskQueue = taskQueue;
  const activities = proxyActivities<Record<string, ActionActivity>>(options);
  return activities[step.uses]!;
}

/** What every step's activity receives beside its input. */
function metaOf(plan: Plan): StepMeta {
  return { scenario: plan.name, ...(plan.lab ? { lab: plan.lab } : {}) };
}

function attemptsOf(err: unknown, step: PlanStep): number {
  if (err instanceof ActivityFailure) {
    const cause = err.cause;
    if (cause instanceof ApplicationFailure) {
      const detail = cause.details?.[0] as { attempt?: unknown } | undefined;
      if (typeof detail?.attempt === 'number') return detail.attempt;
    }
    if (err.retryState === RetryState.MAXIMUM_ATTEMPTS_REACHED) return step.options.retry.maximumAttempts;
  }
  return 1;
}

function messageOf(err: unknown): string {
  if (err instanceof ActivityFailure && err.cause) {
    const cause = err.cause;
    const kind = cause instanceof ApplicationFailure && cause.type ? `${cause.type}: ` : '';
    return `${kind}${cause.message}`;
  }
  return err instanceof Error ? err.message : String(err);
}
