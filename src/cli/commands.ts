/**
 * The `tunnel-lab` commands that talk to Temporal. Each returns its exit code; errors are mapped to codes in
 * main.ts. Those that only read playbooks are in playbook-commands.ts.
 */
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { WorkflowHandle } from '@temporalio/client';
import { actions } from '../../activities/registry.js';
import { PLAYBOOK_ATTRIBUTE, STATUS_ATTRIBUTE, STEP_ATTRIBUTE } from '../../workflows/search-attributes.js';
import {
  RESUME_ACTIONS,
  WORKFLOW_TYPE,
  type Plan,
  type ResumeAction,
  type ScenarioInput,
} from '../../workflows/types.js';
import { resumeScenario, runLabel, scenarioOutcome, progressWithin, startScenario } from '../client.js';
import { runUrl, settings, type Settings } from '../config.js';
import { UsageError } from '../errors.js';
import { unknownName } from '../suggest.js';
import { loadPlaybookFile, resolvePlaybookPath } from '../playbook/load.js';
import { changesText, plannedChanges } from '../playbook/changes.js';
import { loadRunLab } from '../lab/definition.js';
import { ownedSelector, RUN_LABEL } from '../lab/ownership.js';
import { exitCodeOf, follow } from './follow.js';
import { playbooksDir } from './playbook-commands.js';
import { liveAttempts, summaryTable } from './progress.js';
import { reportRun } from '../report/index.js';
import { openSession, type Session } from './session.js';
import { commandSpec, parseCommand, usageHint, type Out } from './spec.js';

/** What `--id` accepts: it names the run in Temporal, in the Web UI's URLs and in the state folder. */
const RUN_ID = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,199}$/;

export async function runCommand(argv: string[], out: Out): Promise<number> {
  const { values, positionals } = parseCommand(commandSpec('run'), argv);
  const playbook = positionals[0]!;
  let config = settings();
  const given = parseVars(strings(values.var));
  const input: ScenarioInput = { playbook };
  const lab = string(values.lab);
  if (lab) input.lab = lab;
  const labHost = string(values['lab-host']);
  if (labHost) input.labHost = labHost;
  if (values['pause-on-failure']) input.pauseOnFailure = true;

  const id = string(values.id);
  if (id !== undefined && !RUN_ID.test(id)) {
    throw new UsageError(
      `--id ${JSON.stringify(id)}: a run id is letters, digits and . _ : @ - (starting with a letter or digit), at most 200`,
    );
  }
  // Names are checked here, so a typo is reported with the known names before anything starts.
  checkName('playbook', playbook, playbooksDir(config), ['schema']);
  if (lab) checkName('lab', lab, path.join(config.projectRoot, 'labs'));
  const file = resolvePlaybookPath(playbook, playbooksDir(config));
  // The playbook's own defaults say which type each --var has; then the run's plan, with them.
  const declared = (await loadPlaybookFile(file, { playbooksDir: playbooksDir(config), actions })).vars;
  input.vars = typedVars(given, declared);
  const plan = await loadPlaybookFile(file, {
    playbooksDir: playbooksDir(config),
    actions,
    vars: input.vars,
  });
  if (values['dry-run']) {
    const cellPlans = plan.matrix
      ? await Promise.all(
          plan.matrix.cells.map((cell) =>
            loadPlaybookFile(file, {
              playbooksDir: playbooksDir(config),
              actions,
              // As the matrix run starts each cell (workflows/matrix.ts): its values over the run's.
              vars: { ...input.vars, ...cell.vars },
              cell: cell.id,
            }),
          ),
        )
      : [plan];
    return dryRun(plan, cellPlans, input.lab, id, config, out);
  }
  input.playbook = path.isAbsolute(playbook) || playbook.includes('/') ? file : playbook;
  // The worker this command runs reads the file it was given; other workers read only their folders.
  if (input.playbook === file)
    config = { ...config, playbookDirs: [...config.playbookDirs, path.dirname(file)] };

  const worker = !values.detach && !values['no-worker'];
  return withSession(config, { worker }, out, async (session) => {
    const handle = await startScenario(session.client, config.taskQueue, input, id, runLabel(plan, input));
    out(`run ${handle.workflowId} started (playbook ${playbook})`);
    if (session.uiUrl) out(`Web UI: ${runUrl(session.uiUrl, config.namespace, handle.workflowId)}`);
    if (values.detach) {
      out(
        `it runs when a worker serves task queue ${config.taskQueue} (npm run worker, or tunnel-lab server); ` +
          `follow it with: tunnel-lab resume ${handle.workflowId}`,
      );
      if (session.ownsServer)
        out('the embedded Temporal server stops with this command: run tunnel-lab server first');
      return 0;
    }
    const uiUrl = session.uiUrl ? runUrl(session.uiUrl, config.namespace, handle.workflowId) : undefined;
    const result = await follow(handle, out, { uiUrl });
    const report = string(values.report);
    if (report) await saveReport(handle, report, config, session.uiUrl, out);
    if (session.ownsServer && uiUrl) {
      out(
        '(that Web UI lives only while this command runs; keep `tunnel-lab server` running for one that stays)',
      );
    }
    return exitCodeOf(result);
  });
}

/** `run --dry-run`: what the run would create and change on its lab, step by step; nothing starts. */
async function dryRun(
  plan: Plan,
  /** The plan itself, or a matrix's cells' plans in the matrix's order. */
  plans: Plan[],
  labRef: string | undefined,
  id: string | undefined,
  config: Settings,
  out: Out,
): Promise<number> {
  out(`dry run of ${plan.name}: nothing is started`);
  for (const [i, cellPlan] of plans.entries()) {
    const lab = await loadRunLab({ lab: labRef ?? cellPlan.lab }, config, id ?? 'dry-run');
    const steps = await plannedChanges(cellPlan, lab, { projectRoot: config.projectRoot, actions });
    if (plan.matrix) out(`cell ${plan.matrix.cells[i]!.id}:`);
    for (const line of changesText(steps, lab)) out(line);
  }
  out(
    `objects it applies carry the labels ${ownedSelector()} and ${RUN_LABEL}=<run id>; ` +
      'manifest.prune and the finally steps find them by these',
  );
  return 0;
}

export async function statusCommand(argv: string[], out: Out): Promise<number> {
  const { values, positionals } = parseCommand(commandSpec('status'), argv);
  const id = positionals[0]!;
  const config = settings();
  return withSession(config, { worker: false }, out, async (session) => {
    const handle = session.client.workflow.getHandle(id);
    const description = await handle.describe();
    const closed = description.status.name !== 'RUNNING';
    const state = closed ? await scenarioOutcome(handle) : await progressWithin(handle, QUERY_WAIT_MS);
    if (values.json) {
      out(JSON.stringify({ workflowId: id, temporalStatus: description.status.name, ...state }, null, 2));
      return 0;
    }
    // The run's own status (a paused run is "running" to Temporal), and Temporal's beside it when they differ.
    const temporal = description.status.name.toLowerCase();
    const shown = state && state.status !== temporal ? `${state.status} (Temporal: ${temporal})` : temporal;
    out(`run ${id}: ${shown} (started ${description.startTime.toISOString()})`);
    if (session.uiUrl) out(`Web UI: ${runUrl(session.uiUrl, config.namespace, id)}`);
    if (!state) {
      out(
        'no worker answered the progress query: start one with `npm run worker` or follow the run with `tunnel-lab resume`',
      );
      return 0;
    }
    out('');
    out(summaryTable(state, { live: liveAttempts(description.raw.pendingActivities), now: Date.now() }));
    return 0;
  });
}

export async function listCommand(argv: string[], out: Out): Promise<number> {
  const { values } = parseCommand(commandSpec('list'), argv);
  const limit = Number(string(values.limit) ?? '20');
  if (!Number.isInteger(limit) || limit < 1) {
    throw new UsageError(`--limit needs a whole number of runs, got ${JSON.stringify(values.limit)}`);
  }
  const config = settings();
  return withSession(config, { worker: false }, out, async (session) => {
    const rows: string[][] = [];
    for await (const run of session.client.workflow.list({ query: `WorkflowType = '${WORKFLOW_TYPE}'` })) {
      const attrs = run.typedSearchAttributes.getAll();
      const get = (name: string) => String(attrs.find((p) => p.key.name === name)?.value ?? '');
      rows.push([
        run.workflowId,
        get(PLAYBOOK_ATTRIBUTE.name),
        get(STATUS_ATTRIBUTE.name) || run.status.name.toLowerCase(),
        get(STEP_ATTRIBUTE.name),
        run.startTime.toISOString(),
      ]);
      if (rows.length >= limit) break;
    }
    if (rows.length === 0) {
      out('no runs yet');
      return 0;
    }
    const header = ['run', 'playbook', 'status', 'step', 'started'];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    for (const r of [header, ...rows])
      out(
        r
          .map((c, i) => c.padEnd(widths[i]!))
          .join('  ')
          .trimEnd(),
      );
    return 0;
  });
}

export async function resumeCommand(argv: string[], out: Out): Promise<number> {
  const { values, positionals } = parseCommand(commandSpec('resume'), argv);
  const id = positionals[0]!;
  const chosen = RESUME_ACTIONS.filter((a) => values[a]);
  if (chosen.length > 1) {
    throw new UsageError(`choose one of --retry, --skip and --abort`, usageHint(commandSpec('resume')));
  }
  const action: ResumeAction | undefined = chosen[0];
  const config = settings();
  const worker = !values.detach && !values['no-worker'];
  return withSession(config, { worker }, out, async (session) => {
    const handle = session.client.workflow.getHandle(id);
    if (action) await expectRunning(handle, `--${action}`);
    if (action) out(await resumeScenario(handle, action));
    else out(`following run ${id}${session.ownsWorker ? ' with a worker in this process' : ''}`);
    if (values.detach) return 0;
    const uiUrl = session.uiUrl ? runUrl(session.uiUrl, config.namespace, id) : undefined;
    const result = await follow(handle, out, { uiUrl });
    const report = string(values.report);
    if (report) await saveReport(handle, report, config, session.uiUrl, out);
    return exitCodeOf(result);
  });
}

/** `tunnel-lab report RUN_ID DIR`: junit.xml and report.html of any run, from its history. */
export async function reportCommand(argv: string[], out: Out): Promise<number> {
  const { positionals } = parseCommand(commandSpec('report'), argv);
  const [id, dir] = positionals as [string, string];
  const config = settings();
  return withSession(config, { worker: false }, out, async (session) => {
    const handle = session.client.workflow.getHandle(id);
    await saveReport(handle, dir, config, session.uiUrl, out);
    return 0;
  });
}

async function saveReport(
  handle: WorkflowHandle,
  dir: string,
  config: Settings,
  uiBase: string | undefined,
  out: Out,
): Promise<void> {
  const files = await reportRun(handle, dir, {
    namespace: config.namespace,
    uiBase,
    localPaths: { [config.stateRoot]: '$TUNNEL_LAB_STATE', [config.projectRoot]: '.' },
  });
  out(`report: ${files.html} and ${files.junit}`);
}

export async function cancelCommand(argv: string[], out: Out): Promise<number> {
  const { positionals } = parseCommand(commandSpec('cancel'), argv);
  const id = positionals[0]!;
  const config = settings();
  return withSession(config, { worker: true }, out, async (session) => {
    const handle = session.client.workflow.getHandle(id);
    await expectRunning(handle, 'cancel');
    await handle.cancel();
    out(`cancel requested for ${id}; finally steps run now`);
    const result = await follow(handle, out);
    return exitCodeOf(result);
  });
}

/** `tunnel-lab server`: the embedded dev server in the foreground, for a Web UI that outlives single runs. */
export async function serverCommand(argv: string[], out: Out): Promise<number> {
  parseCommand(commandSpec('server'), argv);
  const config = settings();
  return withSession(config, { worker: true }, out, async (session) => {
    out(
      `Temporal at ${config.address}${session.uiUrl ? `, Web UI ${session.uiUrl}` : ''}; serving task queue ${config.taskQueue}. Ctrl-C stops.`,
    );
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    return 0;
  });
}

async function withSession(
  config: Settings,
  options: { worker: boolean },
  out: Out,
  body: (s: Session) => Promise<number>,
): Promise<number> {
  const session = await openSession(config, { worker: options.worker, log: out });
  try {
    return await body(session);
  } finally {
    await session.close();
  }
}

/** `--var k=v` as typed: every value is the string after the first `=` (see typedVars). */
export function parseVars(pairs: string[]): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError(`--var needs NAME=VALUE, got ${JSON.stringify(pair)}`);
    vars[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return vars;
}

/**
 * `--var` values with the type the playbook gives each variable by its default: a number, a boolean, or a
 * list or map (written as YAML or JSON); text otherwise, exactly as typed (no YAML parsing: `123`, `&x`,
 * `true` stay text for a text variable).
 */
export function typedVars(
  given: Record<string, string>,
  declared: Record<string, unknown>,
): Record<string, unknown> {
  const typed: Record<string, unknown> = {};
  for (const [name, raw] of Object.entries(given)) {
    const fallback = declared[name];
    const wrong = (kind: string) =>
      new UsageError(
        `--var ${name}=${raw.length > 60 ? `${raw.slice(0, 60)}…` : raw}: the playbook's ${name} is ${kind}`,
      );
    if (typeof fallback === 'number') {
      if (!/^-?\d+(\.\d+)?$/.test(raw.trim())) throw wrong('a number');
      typed[name] = Number(raw);
    } else if (typeof fallback === 'boolean') {
      if (raw !== 'true' && raw !== 'false') throw wrong('true or false');
      typed[name] = raw === 'true';
    } else if (fallback !== null && typeof fallback === 'object') {
      const kind = Array.isArray(fallback) ? 'a list' : 'a map';
      let value: unknown;
      try {
        value = parseYaml(raw);
      } catch {
        throw wrong(`${kind} (YAML or JSON, e.g. ${Array.isArray(fallback) ? '[a, b]' : '{a: 1}'})`);
      }
      if (value === null || typeof value !== 'object' || Array.isArray(value) !== Array.isArray(fallback))
        throw wrong(`${kind} (YAML or JSON, e.g. ${Array.isArray(fallback) ? '[a, b]' : '{a: 1}'})`);
      typed[name] = value;
    } else {
      typed[name] = raw;
    }
  }
  return typed;
}

/** A running run answers its progress query only while a worker serves it; don't wait long for none. */
const QUERY_WAIT_MS = 5000;

function string(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

/**
 * A playbook or lab given by name must exist in its folder; a path is checked where it is read. The error
 * lists the known names and the closest ones.
 */
function checkName(kind: string, ref: string, dir: string, exclude: string[] = []): void {
  if (ref.includes('/') || ref.includes(path.sep) || /\.ya?ml$/.test(ref)) return;
  if (['.yaml', '.yml'].some((ext) => existsSync(path.join(dir, ref + ext)))) return;
  const known = existsSync(dir)
    ? readdirSync(dir)
        .filter((f) => /\.ya?ml$/.test(f))
        .map((f) => f.replace(/\.ya?ml$/, ''))
        .filter((n) => !exclude.includes(n))
        .sort()
    : [];
  throw new UsageError(`${unknownName(kind, ref, known)}; or give a file path`);
}

/** Fails with a clear message when the run has ended: there is nothing left to resume or cancel. */
async function expectRunning(handle: WorkflowHandle, what: string): Promise<void> {
  const { status } = await handle.describe();
  if (status.name !== 'RUNNING') {
    throw new UsageError(
      `run ${handle.workflowId} has already ended (${status.name.toLowerCase()}); nothing to ${what.replace(/^--/, '')}`,
    );
  }
}
