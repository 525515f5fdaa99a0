/**
 * What an action is: the unit a playbook names in `uses:`. One module per action holds its input schema,
 * its policy (timeouts, retries), its UI summary, its examples and the factory of its activity.
 */
import type { z } from 'zod';
import type { LabDefinition } from '../src/lab/definition.js';
import type { LabRuntime } from '../src/lab/runtime.js';
import type { PodNames } from '../src/lab/pod-names.js';
import type { ToolVersions } from '../src/lab/tool-versions.js';
import type { SshPool } from '../src/lab/ssh-pool.js';

/** Timeouts and retries of an action; a step may override `timeout` and `retry` within the caps. */
export interface ActionPolicy {
  /** Default start-to-close timeout of one attempt. */
  timeout: string;
  /** The largest `timeout` a step may ask for. */
  maxTimeout: string;
  /** Set for actions that heartbeat: a silent worker is declared dead after this long. */
  heartbeatTimeout?: string;
  retry: {
    /** Total attempts, the first included. */
    attempts: number;
    initialInterval: string;
    backoff: number;
    maxInterval: string;
  };
  /** The largest `retry.attempts` a step may ask for. */
  maxAttempts: number;
  /**
   * More error types (class names) that fail this action's steps at once. Errors whose class is
   * non-retryable (src/errors.ts) need no entry; the registry refuses one, and unknown names.
   */
  nonRetryable?: string[];
}

/**
 * The policy of a step that is a few kubectl calls to the API server: a minute an attempt, retried with
 * backoff for a while, so that an API server that is briefly away does not fail the run.
 */
export const KUBECTL_POLICY: ActionPolicy = {
  timeout: '1m',
  maxTimeout: '10m',
  heartbeatTimeout: '30s',
  retry: { attempts: 5, initialInterval: '2s', backoff: 2, maxInterval: '30s' },
  maxAttempts: 20,
};

export interface ActionLogger {
  info(message: string, meta?: Record<string, unknown>): void;
  warn(message: string, meta?: Record<string, unknown>): void;
  debug(message: string, meta?: Record<string, unknown>): void;
}

/** What an action's `changes` may read: the project's files and the run's lab, before anything runs. */
export interface ChangeContext {
  projectRoot: string;
  lab: LabDefinition;
}

/** What an activity receives beside its input. */
export interface ActionContext {
  /** The run's own folder for files that outlive one step (kubeconfig, certificates, log marks). */
  stateDir: string;
  log: ActionLogger;
  /** Reports liveness (and optional progress details) to Temporal; also how cancellation reaches the activity. */
  heartbeat(details?: unknown): void;
  /** Aborted when Temporal cancels the activity; pass it to every I/O call. */
  signal: AbortSignal;
  /** Which run this is; `scenario` is the playbook's name. */
  run: { workflowId: string; runId: string; stepId: string; attempt: number; scenario?: string };
  /** The lab this run drives (loaded on first use): its tools, machines and network. */
  lab(): Promise<LabRuntime>;
}

export type { StepMeta } from '../workflows/types.js';

/** Services the worker builds once and hands to every action factory. */
export interface ActionDeps {
  /** Root of the project checkout (playbooks, labs, manifests). */
  projectRoot: string;
  /** Where runs keep their state folders (`<stateRoot>/runs/<workflowId>`). */
  stateRoot: string;
  /** The lab host this worker serves (TUNNEL_LAB_HOST), when it serves one. */
  labHost?: string;
  /** Folders besides the project's playbooks/ that runs may name playbook files in (Settings.playbookDirs). */
  playbookDirs?: string[];
  /** The worker's shared ssh connections to lab machines; each step connects on its own without it. */
  sshPool?: SshPool;
  /** The pods the worker's steps picked by label, kept between steps; each step asks the cluster without it. */
  pods?: PodNames;
  /** The releases the lab tools reported, kept between runs; tools.check asks every run without it. */
  toolVersions?: ToolVersions;
}

export interface ActionExample {
  description: string;
  /** One playbook step, as YAML. */
  yaml: string;
}

export interface ActionDefinition<S extends z.ZodType = z.ZodType, O = unknown> {
  /** `domain.verb`, stable: playbooks refer to it. */
  name: string;
  description: string;
  input: S;
  policy: ActionPolicy;
  /**
   * Whether running a step twice with the same input ends as running it once, as retries, a completion
   * lost in a server outage and resumed runs all do: `true`, or why not. An action that is not idempotent
   * defaults to one attempt (the registry checks it); a step retries it only when it asks to.
   */
  idempotent: true | string;
  /**
   * `false` for an action that never touches the lab (no `ctx.lab()`): a run whose steps are all such
   * actions neither waits for its lab nor holds it. Lab actions leave it unset.
   */
  drivesLab?: false;
  summary(input: z.output<S>): string;
  /**
   * For actions that check something: what the step saw, in a few lines for people (status codes, log
   * lines, verdicts). The terminal, the Web UI and the reports show them beside the step.
   */
  evidence?(output: O, input: z.output<S>): string[];
  /**
   * What a step with this input will create or change, one line each, said before anything runs (the
   * preflight of `tunnel-lab run --dry-run`); [] for an action that only reads. Every action says it, so
   * that a run on a shared cluster can be read before it is started.
   */
  changes(input: z.output<S>, ctx: ChangeContext): string[] | Promise<string[]>;
  /** For checks: what the step expects, in words; reports show it beside what the step saw (its evidence). */
  expects?(input: z.output<S>): string;
  examples: ActionExample[];
  create(deps: ActionDeps): (input: z.output<S>, ctx: ActionContext) => Promise<O>;
}

/**
 * What an action returns when its step has nothing to do on this lab (vm.up on a cluster that already
 * runs): the step is shown as skipped, with the reason, and the run goes on.
 */
export class NotApplicable {
  constructor(readonly reason: string) {}
}

/** The result of a step that does not apply to the run's lab; see NotApplicable. */
export function notApplicable(reason: string): NotApplicable {
  return new NotApplicable(reason);
}

/** Declares an action; a function only so that TypeScript infers the input type for `summary` and `create`. */
export function defineAction<S extends z.ZodType, O>(
  definition: ActionDefinition<S, O>,
): ActionDefinition<S, O> {
  return definition;
}
