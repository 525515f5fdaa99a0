/**
 * Plain data shared by the workflow, the activities and the clients.
 * Everything here crosses the Temporal boundary as JSON, so it holds no functions and no secrets.
 */

/** Input of the `tunnelScenario` workflow; plain JSON so that `temporal workflow start --input` can send it. */
export interface ScenarioInput {
  /** A playbook name in `playbooks/` (e.g. `hello`) or a path to a YAML file, resolved on the worker. */
  playbook: string;
  /** Overrides for the playbook's `vars`. */
  vars?: Record<string, unknown>;
  /** Which lab definition the lab actions drive (a name in `labs/`); the playbook's own choice otherwise. */
  lab?: string;
  /** Pause instead of failing when a step still fails after its retries (overrides the playbook's `onFailure`). */
  pauseOnFailure?: boolean;
  /**
   * The lab host whose worker runs the steps (its queue is `<task queue>@<host>`). Unset: the host of
   * the worker that loads the playbook, or the run's own task queue when that worker names no host.
   */
  labHost?: string;
  /**
   * Set by a matrix run for each of its child runs: the cell (see MatrixCell.id) this run is. The run
   * then runs the playbook's steps with the cell's values in `vars`, and no matrix of its own.
   */
  cell?: string;
}

/** One combination of a matrix's values: its id (`name=value,...`) and the variables it sets. */
export interface MatrixCell {
  id: string;
  vars: Record<string, string | number | boolean>;
}

/** A playbook's matrix, expanded: a run of it starts one child run per cell. */
export interface PlanMatrix {
  cells: MatrixCell[];
  failFast: boolean;
  maxParallel?: number;
}

/** How a matrix run's cell went: its child run's id and outcome. */
export interface CellRecord {
  id: string;
  vars: MatrixCell['vars'];
  /** The child run's workflow id. */
  workflowId: string;
  status: StepStatus;
  startedAt?: string;
  durationMs?: number;
  /** Why the cell failed, or was cancelled or skipped. */
  error?: string;
  /** Set while the cell's run waits paused on a failed step (it tells the matrix run). */
  paused?: CellPause;
}

/** Where a cell's run paused, and why. */
export interface CellPause {
  step: string;
  reason: string;
}

/** What a cell's run signals its matrix run (`cellPaused`): paused, or running again (no `paused`). */
export interface CellPauseSignal {
  workflowId: string;
  paused?: CellPause;
}

/**
 * What every view says beside a cell's status: for a paused cell, where it waits and how to answer it;
 * for one that did not pass, why; else nothing.
 */
export function cellNote(cell: CellRecord): string {
  if (cell.paused) {
    return `paused at ${cell.paused.step}: ${cell.paused.reason}; answer with tunnel-lab resume ${cell.workflowId}`;
  }
  return cell.status === 'passed' ? '' : (cell.error ?? '');
}

/**
 * The workflow ids of a matrix run's cells: the parent's id, a dot, and the cell's values joined by `-`
 * (`run-1.native-tunnel-http2`), in characters that every tool takes in a path (a run's folder is named
 * after its id); a second cell with the same values gets a number too.
 */
export function cellWorkflowIds(parentId: string, cells: readonly MatrixCell[]): string[] {
  const taken = new Set<string>();
  return cells.map((cell) => {
    const slug =
      Object.values(cell.vars)
        .map((v) => String(v).replace(/[^A-Za-z0-9_.-]+/g, '_'))
        .join('-') || 'cell';
    let id = `${parentId}.${slug}`;
    for (let n = 2; taken.has(id); n++) id = `${parentId}.${slug}-${n}`;
    taken.add(id);
    return id;
  });
}

/** Temporal retry policy fields the plan carries for each step. */
export interface PlanRetry {
  maximumAttempts: number;
  initialInterval: string;
  backoffCoefficient: number;
  maximumInterval: string;
  nonRetryableErrorTypes: string[];
}

/** Activity options for one step: the action's policy with the step's overrides applied. */
export interface PlanStepOptions {
  startToCloseTimeout: string;
  heartbeatTimeout?: string;
  retry: PlanRetry;
}

/** One validated, fully interpolated step, ready for the interpreter. */
export interface PlanStep {
  id: string;
  name?: string;
  uses: string;
  with: Record<string, unknown>;
  /** The line the Web UI shows for this step's activity. */
  summary: string;
  /** For checks: what the step expects, in words (ActionDefinition.expects). */
  expects?: string;
  options: PlanStepOptions;
  continueOnError: boolean;
}

/** Steps that run at the same time; the group fails when one of them fails. */
export interface PlanGroup {
  id: string;
  name?: string;
  parallel: PlanStep[];
}

export type PlanNode = PlanStep | PlanGroup;

/** What the `loadPlaybook` activity hands to the workflow. */
/** What the workflow passes to every action activity beside its input. */
export interface StepMeta {
  /** Lab definition name or path; `vagrant` when unset. */
  lab?: string;
  /** The playbook's name, which labels what the run applies. */
  scenario?: string;
}

export interface Plan {
  name: string;
  description?: string;
  /** Absolute path of the playbook file on the worker that loaded it. */
  file: string;
  /** The lab the lab actions drive (a name in `labs/`), when the playbook or the run named one. */
  lab?: string;
  /** Task queue of the lab host the steps run on; the run's own queue when unset. */
  stepQueue?: string;
  /** Whether a step drives the lab (any action but those that declare `drivesLab: false`). */
  usesLab?: boolean;
  /**
   * On a lab of kind existing (a shared cluster): what the steps will create and change, worked out when
   * the playbook was loaded (see src/playbook/changes.ts).
   */
  changes?: PlannedChanges;
  /** The playbook's matrix, when it has one and the run is not one of its cells. */
  matrix?: PlanMatrix;
  vars: Record<string, unknown>;
  onFailure: 'fail' | 'pause';
  steps: PlanNode[];
  finally: PlanStep[];
}

/** What a run's steps will create and change on its lab, for the steps that change something. */
export interface PlannedChanges {
  lab: string;
  steps: { id: string; changes: string[] }[];
}

export type StepStatus = 'pending' | 'running' | 'passed' | 'failed' | 'skipped' | 'cancelled';
export type RunStatus = 'running' | 'paused' | 'passed' | 'failed' | 'cancelled';

export interface StepRecord {
  id: string;
  uses: string;
  name?: string;
  summary?: string;
  /** `main` for `steps`, `finally` for the finally block. */
  phase: 'main' | 'finally';
  /** Id of the parallel group the step belongs to, if any. */
  group?: string;
  status: StepStatus;
  /** Activity attempts spent on this step, across resumes. */
  attempts: number;
  startedAt?: string;
  durationMs?: number;
  /** For checks: what the step expects, in words. */
  expected?: string;
  /** What the step saw, for people: status codes, log lines, verdicts (checks only). */
  evidence?: string[];
  output?: unknown;
  error?: string;
}

/** The run's result, and the answer of the `progress` query while it runs. */
export interface ScenarioResult {
  playbook: string;
  status: RunStatus;
  steps: StepRecord[];
  /** Set while paused: the step waiting for a `resume` decision. */
  pausedStep?: string;
  /** Why the run failed, when it did. */
  error?: string;
  /** Set while the run waits for its lab, which another run holds (see LabIdentity). */
  waitingForLab?: LabWait;
  /** A matrix run's cells, each a child run; a matrix run has no steps of its own. */
  cells?: CellRecord[];
  /** On a shared cluster: what the run's steps create and change there (Plan.changes). */
  changes?: PlannedChanges;
}

/** What a run waiting for its lab shows: which lab, and the run that holds it (when it could be read). */
export interface LabWait {
  lab: string;
  heldBy?: string;
}

/**
 * The lab a run drives, as the lab host's worker resolves it. Runs whose labs share a lease id never
 * overlap: the id is the host and the lab's Vagrant folder, where its machines live. A lab whose machines
 * are the run's own (a simulated lab with `lifetime: run`) has no lease id and is never waited for.
 */
export interface LabIdentity {
  /** The lab's name, for people. */
  name: string;
  /** The workflow id of the lab's lease (a `labLease` run, child of the run that holds the lab). */
  leaseId?: string;
  /** Where the lab is, for people: host and folder. */
  where: string;
}

/** The line every view shows for a waiting run: `waiting for lab X, held by run Y`. */
export function labWaitText(wait: LabWait): string {
  return `waiting for lab ${wait.lab}, held by run ${wait.heldBy ?? '(unknown)'}`;
}

/** Whether a lab's lease is open, and which run holds it when that could be read. */
export interface LabHolder {
  held: boolean;
  heldBy?: string;
}

/** Input of the `labLease` workflow. */
export interface LabLeaseInput {
  lab: string;
  where: string;
  /** The workflow id of the run that holds the lab. */
  holder: string;
}

/** How a paused run can be answered. */
export const RESUME_ACTIONS = ['retry', 'skip', 'abort'] as const;
export type ResumeAction = (typeof RESUME_ACTIONS)[number];

/**
 * The activity id of a step's execution: the step id, then `#n` for the n-th execution of a step run
 * again after a resume (its attempts restart with a fresh id).
 */
export function activityIdOf(stepId: string, previousAttempts: number): string {
  return previousAttempts === 0 ? stepId : `${stepId}#${previousAttempts + 1}`;
}

/** The step an activity id belongs to: `<id>` or `<id>#n` → `<id>`. */
export function stepOfActivity(activityId: string): string {
  const hash = activityId.lastIndexOf('#');
  return hash > 0 && /^\d+$/.test(activityId.slice(hash + 1)) ? activityId.slice(0, hash) : activityId;
}

/** Argument of the `resume` update and signal. */
export interface ResumeRequest {
  action: ResumeAction;
}

/** What every action activity returns: its output and the attempt that produced it. */
export interface StepOutcome {
  output: unknown;
  attempt: number;
  /** What a check saw, in a few lines for people (see ActionDefinition.evidence). */
  evidence?: string[];
  /** Set when the step had nothing to do on the run's lab: why (the step is shown as skipped). */
  skipped?: string;
}

export function isGroup(node: PlanNode): node is PlanGroup {
  return 'parallel' in node;
}

/** Every step of a plan in run order, main steps (with their parallel group) then finally steps. */
export function planSteps(plan: Plan): { step: PlanStep; phase: StepRecord['phase']; group?: string }[] {
  const main = plan.steps.flatMap((node) =>
    isGroup(node)
      ? node.parallel.map((step) => ({ step, phase: 'main' as const, group: node.id }))
      : [{ step: node, phase: 'main' as const }],
  );
  return [...main, ...plan.finally.map((step) => ({ step, phase: 'finally' as const }))];
}

/** The record of a step that has not run yet. */
export function pendingRecord(step: PlanStep, phase: StepRecord['phase'], group?: string): StepRecord {
  const record: StepRecord = {
    id: step.id,
    uses: step.uses,
    phase,
    status: 'pending',
    attempts: 0,
    summary: step.summary,
  };
  if (step.name) record.name = step.name;
  if (step.expects) record.expected = step.expects;
  if (group) record.group = group;
  return record;
}

/** How one execution of a step ended (with the action's retries), as the workflow and a history reader see it. */
export type StepEnd =
  | {
      outcome: 'passed';
      attempts: number;
      output: unknown;
      evidence?: string[] | undefined;
      /** The step did not apply to the lab: it ends skipped, with this reason as what it saw. */
      skipped?: string | undefined;
    }
  | { outcome: 'failed'; attempts: number; error: string }
  | { outcome: 'cancelled' };

/**
 * Records how a step's execution ended: the one place a step's status, attempts, output and error are
 * decided, by the workflow while it runs and by the report when it reads a run from its history.
 */
export function settleStep(record: StepRecord, end: StepEnd): void {
  if (end.outcome === 'cancelled') {
    record.status = 'cancelled';
    return;
  }
  record.attempts += end.attempts;
  if (end.outcome === 'passed') {
    record.status = end.skipped ? 'skipped' : 'passed';
    record.output = end.output;
    record.error = undefined;
    if (end.skipped) record.evidence = [`skipped: ${end.skipped}`];
    else if (end.evidence) record.evidence = end.evidence;
  } else {
    record.status = 'failed';
    record.error = end.error;
  }
}

/** The type of the failure a run ends with when a step or its playbook failed; its details hold the ScenarioResult. */
export const SCENARIO_FAILED = 'ScenarioFailed';

/** One-character marks of step states, shared by the terminal and the Web UI details. */
export const STATUS_MARKS: Record<StepStatus, string> = {
  pending: '·',
  running: '▶',
  passed: '✔',
  failed: '✘',
  skipped: '↷',
  cancelled: '⊘',
};

/** Names shared by workflow, worker and clients. */
export const WORKFLOW_TYPE = 'tunnelScenario';
export const PROGRESS_QUERY = 'progress';
export const RESUME = 'resume';
export const CELL_PAUSED = 'cellPaused';
export const LOAD_PLAYBOOK_ACTIVITY = 'loadPlaybook';
export const LAB_LEASE_WORKFLOW = 'labLease';
/** The signal that ends a lab's lease: its holder has finished with the lab. */
export const RELEASE_LAB = 'release';

/** The task queue of a lab host's activity worker. */
export function hostQueue(taskQueue: string, host: string): string {
  return `${taskQueue}@${host}`;
}
