/**
 * Reads a playbook file, validates it against the playbook format and each action's input schema,
 * interpolates its variables and turns it into a Plan. Every problem names file:line:column and the field.
 */
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { z } from 'zod';
import type { ActionDefinition } from '../../activities/action.js';
import {
  isGroup,
  type Plan,
  type PlanGroup,
  type PlanNode,
  type PlanStep,
  type PlanStepOptions,
} from '../../workflows/types.js';
import { fromMs, toMs } from '../duration.js';
import { InputError, PlaybookError } from '../errors.js';
import { within } from '../paths.js';
import { fieldPath, valueAt, YamlSource, type Path, type Problem } from '../yaml-source.js';
import { interpolate, wholeExpression, type InterpolationProblem } from './interpolate.js';
import { z as zod } from 'zod';
import { expandMatrix } from './matrix.js';
import { extendingShape, genericStep, groupSchema, playbookShape } from './schema.js';

export interface LoadOptions {
  /** Where playbook names are looked up. */
  playbooksDir: string;
  actions: readonly ActionDefinition[];
  /** Run-time overrides of the playbook's vars. */
  vars?: Record<string, unknown>;
  /** The matrix cell the run is (its values are in `vars`): the plan then has no matrix. */
  cell?: string;
}

/** `hello` → `<playbooksDir>/hello.yaml`; anything that looks like a path is taken as one. */
export function resolvePlaybookPath(ref: string, playbooksDir: string): string {
  const looksLikePath = ref.includes('/') || ref.includes(path.sep) || /\.ya?ml$/.test(ref);
  if (looksLikePath) return path.resolve(ref);
  for (const ext of ['.yaml', '.yml']) {
    const candidate = path.join(playbooksDir, ref + ext);
    if (existsSync(candidate)) return candidate;
  }
  return path.join(playbooksDir, `${ref}.yaml`);
}

/**
 * The file of the playbook a run names, as the worker reads it: a name in `dirs[0]` (the project's
 * playbooks/), or a path to a .yaml/.yml file inside one of `dirs`. Anything else is refused unread, so
 * that a workflow input cannot have the worker read its host's files into the run's history.
 */
export function runPlaybookFile(ref: string, dirs: readonly string[]): string {
  const file = resolvePlaybookPath(ref, dirs[0]!);
  const refuse = (message: string) =>
    new PlaybookError([{ file: ref, line: 0, column: 0, path: '', message }]);
  if (!/\.ya?ml$/.test(file)) throw refuse('a playbook is a .yaml or .yml file');
  const real = realOrSelf(file);
  if (!dirs.some((dir) => within(realOrSelf(dir), real))) {
    throw refuse(
      `is outside the folders this worker reads playbooks from (${dirs.join(', ')}); ` +
        'add its folder to TUNNEL_LAB_PLAYBOOK_DIRS on the worker',
    );
  }
  return file;
}

/** The path with symbolic links resolved, so that a link cannot lead out of a folder; as given if absent. */
function realOrSelf(file: string): string {
  try {
    return realpathSync(file);
  } catch {
    return path.resolve(file);
  }
}

/** The largest playbook file read: its plan travels through Temporal's history, whose payloads are capped. */
export const MAX_PLAYBOOK_BYTES = 256 * 1024;

export async function loadPlaybookFile(file: string, options: LoadOptions): Promise<Plan> {
  // Checked before reading: a file that is no playbook is not read (and its lines never quoted back).
  if (!/\.ya?ml$/.test(file)) {
    throw new PlaybookError([
      { file, line: 0, column: 0, path: '', message: 'a playbook is a .yaml or .yml file' },
    ]);
  }
  let text: string;
  try {
    const { size } = await stat(file);
    if (size > MAX_PLAYBOOK_BYTES) {
      throw new PlaybookError([
        {
          file,
          line: 0,
          column: 0,
          path: '',
          message: `is ${size} bytes; a playbook is at most ${MAX_PLAYBOOK_BYTES}`,
        },
      ]);
    }
    text = await readFile(file, 'utf8');
  } catch (err) {
    if (err instanceof PlaybookError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    const hint = code === 'ENOENT' ? `no such playbook (looked in ${options.playbooksDir})` : String(err);
    throw new PlaybookError([{ file, line: 0, column: 0, path: '', message: hint }]);
  }
  return parsePlaybook(text, file, options);
}

/** The largest value a run may give a variable, as JSON: runs carry their inputs in Temporal's history. */
export const MAX_VAR_BYTES = 16 * 1024;

/** Validates and plans playbook text; `file` is used in messages only. */
export function parsePlaybook(text: string, file: string, options: LoadOptions): Plan {
  const source = YamlSource.parse(text, file);
  const problems: Problem[] = [];
  const data = source.value();
  const extending = !!data && typeof data === 'object' && 'extends' in data;
  const top = (extending ? extendingShape : playbookShape).safeParse(data);
  if (!top.success) {
    for (const key of ['steps', 'finally']) {
      if (extending && key in (data as object)) {
        problems.push(
          source.problem(
            [key],
            `a playbook that extends another runs that one's steps; it has no ${key} of its own`,
          ),
        );
      }
    }
    if (problems.length === 0) problems.push(...source.issues(top.error, []));
    throw new PlaybookError(problems);
  }
  // `stepSource` holds the steps: this file, or the playbook it extends.
  const { playbook, stepSource } =
    'extends' in top.data ? extend(top.data, source, file) : { playbook: top.data, stepSource: source };

  const declared = playbook.vars;
  for (const [name, value] of Object.entries(options.vars ?? {})) {
    // Checked before anything uses the value (a regex, a manifest, the run's history); never quoted whole.
    const bytes = Buffer.byteLength(JSON.stringify(value) ?? '');
    if (bytes > MAX_VAR_BYTES) {
      problems.push(
        source.problem(
          ['vars'],
          `the run's value of "${name}" is ${bytes} bytes; a variable holds at most ${MAX_VAR_BYTES}`,
        ),
      );
    }
    if (!(name in declared)) {
      problems.push(
        source.problem(
          ['vars'],
          `the run sets variable "${name}", which the playbook does not declare (declared: ${Object.keys(declared).join(', ') || 'none'})`,
        ),
      );
    }
  }
  const matrix = playbook.matrix && expandMatrix(playbook.matrix, declared, source, ['matrix'], problems);
  if (options.cell !== undefined && matrix && !matrix.cells.some((c) => c.id === options.cell)) {
    const known = matrix.cells.map((c) => c.id).join('; ');
    problems.push(
      source.problem(
        ['matrix'],
        `the run is cell "${options.cell}", which the matrix has not (cells: ${known})`,
      ),
    );
  } else if (options.cell !== undefined && !playbook.matrix) {
    problems.push(
      source.problem([], `the run is cell "${options.cell}" of a matrix, but the playbook has none`),
    );
  } else if (matrix && options.cell === undefined) {
    const varied = new Set(matrix.cells.flatMap((c) => Object.keys(c.vars)));
    for (const name of Object.keys(options.vars ?? {})) {
      if (varied.has(name))
        problems.push(
          source.problem(
            ['matrix'],
            `the run sets variable "${name}", which the matrix varies: each cell sets it`,
          ),
        );
    }
  }
  const context = { vars: { ...declared, ...options.vars } };
  const seen = new Map<string, string>();
  const checkId = (id: string, at: Path): void => {
    const first = seen.get(id);
    if (first) problems.push(stepSource.problem(at, `duplicate step id "${id}" (first used at ${first})`));
    else seen.set(id, fieldPath(at));
  };

  const planStep = (raw: unknown, at: Path): PlanStep | undefined => {
    const parsed = genericStep.safeParse(raw);
    if (!parsed.success) {
      problems.push(...stepSource.issues(parsed.error, at));
      return undefined;
    }
    const step = parsed.data;
    checkId(step.id, [...at, 'id']);
    const action = options.actions.find((a) => a.name === step.uses);
    if (!action) {
      const known = options.actions
        .map((a) => a.name)
        .sort()
        .join(', ');
      problems.push(
        stepSource.problem([...at, 'uses'], `unknown action "${step.uses}"; known actions: ${known}`),
      );
      return undefined;
    }
    const policy = stepOptions(action, step, at, stepSource, problems);
    const interpolationProblems: InterpolationProblem[] = [];
    const withValue = interpolate(step.with, context, [...at, 'with'], interpolationProblems);
    const name =
      step.name === undefined
        ? undefined
        : interpolate(step.name, context, [...at, 'name'], interpolationProblems);
    for (const p of interpolationProblems) problems.push(stepSource.problem(p.path, p.message));
    if (interpolationProblems.length > 0) return undefined;
    const input = action.input.safeParse(withValue);
    if (!input.success) {
      for (const [i, problem] of stepSource.issues(input.error, [...at, 'with'], withValue).entries()) {
        // A value that is one `${{ vars.X }}` set by the run came from its --var, which is what to fix.
        const raw = valueAt(step.with, input.error.issues[i]!.path as Path);
        const name =
          typeof raw === 'string' ? /^vars\.([^.]+)$/.exec(wholeExpression(raw) ?? '')?.[1] : undefined;
        if (name !== undefined && options.vars && name in options.vars) {
          problem.message = `--var ${name}=${clip(String(options.vars[name]))}: ${problem.message}`;
        }
        problems.push(problem);
      }
      return undefined;
    }
    const planned: PlanStep = {
      id: step.id,
      uses: step.uses,
      with: input.data as Record<string, unknown>,
      summary: summarize(action, input.data, step.id),
      options: policy,
      continueOnError: step.continueOnError,
    };
    if (typeof name === 'string') planned.name = name;
    const expects = action.expects && describe(() => action.expects!(input.data));
    if (expects) planned.expects = expects;
    return planned;
  };

  const steps: PlanNode[] = [];
  playbook.steps.forEach((raw, i) => {
    const at: Path = ['steps', i];
    if (raw && typeof raw === 'object' && 'parallel' in raw) {
      const group = planGroup(raw, at);
      if (group) steps.push(group);
    } else {
      const step = planStep(raw, at);
      if (step) steps.push(step);
    }
  });
  const finallySteps: PlanStep[] = [];
  playbook.finally.forEach((raw, i) => {
    const step = planStep(raw, ['finally', i]);
    if (step) finallySteps.push(step);
  });

  if (problems.length > 0) throw new PlaybookError(problems);
  const plan: Plan = {
    name: playbook.name,
    file,
    vars: context.vars,
    onFailure: playbook.onFailure,
    steps,
    finally: finallySteps,
  };
  if (playbook.description) plan.description = playbook.description;
  if (playbook.lab) plan.lab = playbook.lab;
  if (matrix && options.cell === undefined) {
    // Every cell must plan as well: a value that breaks a step is found now, not when its cell runs.
    for (const cell of matrix.cells) {
      try {
        parsePlaybook(text, file, { ...options, vars: { ...options.vars, ...cell.vars }, cell: cell.id });
      } catch (err) {
        if (!(err instanceof PlaybookError)) throw err;
        problems.push(...err.problems.map((p) => ({ ...p, message: `in cell ${cell.id}: ${p.message}` })));
      }
    }
    if (problems.length > 0) throw new PlaybookError(problems);
    plan.matrix = matrix;
  }
  const all = [...steps.flatMap((node) => (isGroup(node) ? node.parallel : [node])), ...finallySteps];
  plan.usesLab = all.some((step) => options.actions.find((a) => a.name === step.uses)?.drivesLab !== false);
  return plan;

  function planGroup(raw: object, at: Path): PlanGroup | undefined {
    const shape = groupSchema(zod.unknown()).safeParse(raw);
    if (!shape.success) {
      problems.push(...stepSource.issues(shape.error, at));
      // The members are checked anyway, so that one pass reports every problem.
      const members = (raw as { parallel?: unknown }).parallel;
      if (Array.isArray(members)) members.forEach((member, j) => planStep(member, [...at, 'parallel', j]));
      return undefined;
    }
    checkId(shape.data.id, [...at, 'id']);
    const members = shape.data.parallel
      .map((member, j) => planStep(member, [...at, 'parallel', j]))
      .filter((s): s is PlanStep => s !== undefined);
    const group: PlanGroup = { id: shape.data.id, parallel: members };
    if (shape.data.name) group.name = shape.data.name;
    return group;
  }
}

type PlaybookTop = z.output<typeof playbookShape>;

/**
 * A playbook that `extends` another: the other's steps, finally steps, vars and settings, with this
 * one's name, description, matrix and settings, and its vars as new defaults of vars the other declares.
 * The other playbook is read from the same folder and may not extend a third.
 */
function extend(
  top: z.output<typeof extendingShape>,
  source: YamlSource,
  file: string,
): { playbook: PlaybookTop; stepSource: YamlSource } {
  const baseFile = path.join(path.dirname(file), `${top.extends}.yaml`);
  const fail = (message: string): never => {
    throw new PlaybookError([source.problem(['extends'], message)]);
  };
  if (path.resolve(baseFile) === path.resolve(file)) fail('a playbook cannot extend itself');
  let text = '';
  try {
    text = readFileSync(baseFile, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    fail(code === 'ENOENT' ? `no playbook ${baseFile} to extend` : `cannot read ${baseFile}: ${String(err)}`);
  }
  if (Buffer.byteLength(text) > MAX_PLAYBOOK_BYTES) fail(`${baseFile} is larger than a playbook may be`);
  const baseSource = YamlSource.parse(text, baseFile);
  const baseData = baseSource.value();
  if (baseData && typeof baseData === 'object' && 'extends' in baseData) {
    fail(`${top.extends} extends another playbook itself; a playbook extends one that has steps`);
  }
  const base = playbookShape.safeParse(baseData);
  if (!base.success) throw new PlaybookError(baseSource.issues(base.error, []));
  const problems: Problem[] = [];
  for (const name of Object.keys(top.vars)) {
    if (!(name in base.data.vars)) {
      problems.push(
        source.problem(
          ['vars', name],
          `${top.extends} declares no variable "${name}" (declared: ${Object.keys(base.data.vars).join(', ') || 'none'})`,
        ),
      );
    }
  }
  if (problems.length > 0) throw new PlaybookError(problems);
  const playbook: PlaybookTop = {
    ...base.data,
    name: top.name,
    vars: { ...base.data.vars, ...top.vars },
    onFailure: 'onFailure' in (source.value() as object) ? top.onFailure : base.data.onFailure,
  };
  delete playbook.matrix;
  if (top.matrix) playbook.matrix = top.matrix;
  if (top.description !== undefined) playbook.description = top.description;
  if (top.lab !== undefined) playbook.lab = top.lab;
  return { playbook, stepSource: baseSource };
}

function summarize(action: ActionDefinition, input: unknown, id: string): string {
  return describe(() => action.summary(input)) ?? `${action.name} (${id})`;
}

/** A description an action words from its input; a bug in the wording must not stop the run. */
function describe(words: () => string): string | undefined {
  try {
    return words();
  } catch {
    return undefined;
  }
}

function stepOptions(
  action: ActionDefinition,
  step: z.output<typeof genericStep>,
  at: Path,
  source: YamlSource,
  problems: Problem[],
): PlanStepOptions {
  const { policy } = action;
  const timeout = step.timeout ?? policy.timeout;
  if (step.timeout && toMs(step.timeout) > toMs(policy.maxTimeout)) {
    problems.push(
      source.problem(
        [...at, 'timeout'],
        `timeout ${step.timeout} is longer than ${action.name} allows (${policy.maxTimeout})`,
      ),
    );
  }
  const attempts = step.retry?.attempts ?? policy.retry.attempts;
  if (attempts > policy.maxAttempts) {
    problems.push(
      source.problem(
        [...at, 'retry', 'attempts'],
        `${attempts} attempts is more than ${action.name} allows (${policy.maxAttempts})`,
      ),
    );
  }
  const options: PlanStepOptions = {
    startToCloseTimeout: fromMs(toMs(timeout)),
    retry: {
      maximumAttempts: attempts,
      initialInterval: step.retry?.interval ?? policy.retry.initialInterval,
      backoffCoefficient: step.retry?.backoff ?? policy.retry.backoff,
      maximumInterval: step.retry?.maxInterval ?? policy.retry.maxInterval,
      nonRetryableErrorTypes: [...(policy.nonRetryable ?? []), InputError.name],
    },
  };
  if (policy.heartbeatTimeout) options.heartbeatTimeout = policy.heartbeatTimeout;
  return options;
}

/** A value as messages quote it: its start, and how much more there is. */
function clip(value: string, max = 60): string {
  return value.length <= max ? value : `${value.slice(0, max)}… (${value.length} characters)`;
}
