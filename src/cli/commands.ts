/** The `tunnel-lab` commands. Each returns its exit code; errors are mapped to codes in main.ts. */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parse as parseYamlScalar } from 'yaml';
import type { WorkflowHandle } from '@temporalio/client';
import { z } from 'zod';
import { actions } from '../../activities/registry.js';
import { WORKFLOW_TYPE, type ResumeAction, type ScenarioInput } from '../../workflows/types.js';
import { resumeScenario, scenarioOutcome, queryProgress, startScenario } from '../client.js';
import { runUrl, settings, type Settings } from '../config.js';
import { ExitError, PlaybookError } from '../errors.js';
import { loadPlaybookFile, resolvePlaybookPath } from '../playbook/load.js';
import { playbookJsonSchema } from '../playbook/schema.js';
import { follow } from './follow.js';
import { liveAttempts, summaryTable } from './progress.js';
import { reportRun } from '../report/index.js';
import { openSession, type Session } from './session.js';

export type Out = (line: string) => void;

const playbooksDir = (config: Settings) => path.join(config.projectRoot, 'playbooks');

export async function runCommand(argv: string[], out: Out): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      var: { type: 'string', multiple: true, short: 'v' },
      lab: { type: 'string' },
      'lab-host': { type: 'string' },
      'pause-on-failure': { type: 'boolean' },
      id: { type: 'string' },
      report: { type: 'string' },
      detach: { type: 'boolean', short: 'd' },
      'no-worker': { type: 'boolean' },
    },
  });
  const playbook = positionals[0];
  if (!playbook || positionals.length > 1)
    throw new ExitError(
      2,
      'usage: tunnel-lab run PLAYBOOK [--var k=v]... [--lab NAME] [--lab-host HOST] [--pause-on-failure] [--id ID] [--detach] [--no-worker]',
    );
  const config = settings();
  const input: ScenarioInput = { playbook, vars: parseVars(values.var ?? []) };
  if (values.lab) input.lab = values.lab;
  if (values['lab-host']) input.labHost = values['lab-host'];
  if (values['pause-on-failure']) input.pauseOnFailure = true;

  // Check the file here too, so a typo is reported before anything starts.
  const file = resolvePlaybookPath(playbook, playbooksDir(config));
  await loadPlaybookFile(file, { playbooksDir: playbooksDir(config), actions, vars: input.vars });
  input.playbook = path.isAbsolute(playbook) || playbook.includes('/') ? file : playbook;

  const worker = !values.detach && !values['no-worker'];
  return withSession(config, { worker }, out, async (session) => {
    const handle = await startScenario(session.client, config.taskQueue, input, values.id);
    out(`run ${handle.workflowId} started (playbook ${playbook})`);
    if (session.uiUrl) out(`Web UI: ${runUrl(session.uiUrl, config.namespace, handle.workflowId)}`);
    if (values.detach) return 0;
    const uiUrl = session.uiUrl ? runUrl(session.uiUrl, config.namespace, handle.workflowId) : undefined;
    const result = await follow(handle, out, { uiUrl });
    if (values.report) await saveReport(handle, values.report, config, uiUrl, out);
    return result.status === 'passed' ? 0 : 1;
  });
}

export async function statusCommand(argv: string[], out: Out): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { json: { type: 'boolean' } },
  });
  const id = need(positionals[0], 'usage: tunnel-lab status RUN_ID [--json]');
  const config = settings();
  return withSession(config, { worker: false }, out, async (session) => {
    const handle = session.client.workflow.getHandle(id);
    const description = await handle.describe();
    const closed = description.status.name !== 'RUNNING';
    const state = closed
      ? await scenarioOutcome(handle)
      : await withinMs(queryProgress(handle), QUERY_WAIT_MS);
    if (values.json) {
      out(JSON.stringify({ workflowId: id, temporalStatus: description.status.name, ...state }, null, 2));
      return 0;
    }
    out(
      `run ${id}: ${description.status.name.toLowerCase()} (started ${description.startTime.toISOString()})`,
    );
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
  const { values } = parseArgs({ args: argv, options: { limit: { type: 'string', default: '20' } } });
  const config = settings();
  return withSession(config, { worker: false }, out, async (session) => {
    const rows: string[][] = [];
    const limit = Number(values.limit);
    for await (const run of session.client.workflow.list({ query: `WorkflowType = '${WORKFLOW_TYPE}'` })) {
      const attrs = run.typedSearchAttributes.getAll();
      const get = (name: string) => String(attrs.find((p) => p.key.name === name)?.value ?? '');
      rows.push([
        run.workflowId,
        get('TunnelPlaybook'),
        get('TunnelStatus') || run.status.name.toLowerCase(),
        get('TunnelStep'),
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
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      retry: { type: 'boolean' },
      skip: { type: 'boolean' },
      abort: { type: 'boolean' },
      detach: { type: 'boolean', short: 'd' },
      'no-worker': { type: 'boolean' },
      report: { type: 'string' },
    },
  });
  const usage = 'usage: tunnel-lab resume RUN_ID [--retry | --skip | --abort] [--detach] [--no-worker]';
  const id = need(positionals[0], usage);
  const chosen = (['retry', 'skip', 'abort'] as const).filter((a) => values[a]);
  if (chosen.length > 1) throw new ExitError(2, usage);
  const action: ResumeAction | undefined = chosen[0];
  const config = settings();
  const worker = !values.detach && !values['no-worker'];
  return withSession(config, { worker }, out, async (session) => {
    const handle = session.client.workflow.getHandle(id);
    if (action) out(await resumeScenario(handle, action));
    else out(`following run ${id}${session.ownsWorker ? ' with a worker in this process' : ''}`);
    if (values.detach) return 0;
    const uiUrl = session.uiUrl ? runUrl(session.uiUrl, config.namespace, id) : undefined;
    const result = await follow(handle, out, { uiUrl });
    if (values.report) await saveReport(handle, values.report, config, uiUrl, out);
    return result.status === 'passed' ? 0 : 1;
  });
}

/** `tunnel-lab report RUN_ID DIR`: junit.xml and report.html of any run, from its history. */
export async function reportCommand(argv: string[], out: Out): Promise<number> {
  const { positionals } = parseArgs({ args: argv, allowPositionals: true });
  const usage = 'usage: tunnel-lab report RUN_ID DIR';
  const id = need(positionals[0], usage);
  const dir = need(positionals[1], usage);
  if (positionals.length > 2) throw new ExitError(2, usage);
  const config = settings();
  return withSession(config, { worker: false }, out, async (session) => {
    const handle = session.client.workflow.getHandle(id);
    const uiUrl = session.uiUrl ? runUrl(session.uiUrl, config.namespace, id) : undefined;
    await saveReport(handle, dir, config, uiUrl, out);
    return 0;
  });
}

async function saveReport(
  handle: WorkflowHandle,
  dir: string,
  config: Settings,
  uiUrl: string | undefined,
  out: Out,
): Promise<void> {
  const files = await reportRun(handle, dir, { namespace: config.namespace, uiUrl });
  out(`report: ${files.html} and ${files.junit}`);
}

export async function cancelCommand(argv: string[], out: Out): Promise<number> {
  const { positionals } = parseArgs({ args: argv, allowPositionals: true });
  const id = need(positionals[0], 'usage: tunnel-lab cancel RUN_ID');
  const config = settings();
  return withSession(config, { worker: true }, out, async (session) => {
    const handle = session.client.workflow.getHandle(id);
    await handle.cancel();
    out(`cancel requested for ${id}; finally steps run now`);
    const result = await follow(handle, out);
    return result.status === 'passed' ? 0 : 1;
  });
}

export async function validateCommand(argv: string[], out: Out, err: Out): Promise<number> {
  const { positionals } = parseArgs({ args: argv, allowPositionals: true });
  if (positionals.length === 0) throw new ExitError(2, 'usage: tunnel-lab validate FILE...');
  const config = settings();
  let failed = 0;
  for (const ref of positionals) {
    const file = resolvePlaybookPath(ref, playbooksDir(config));
    try {
      const plan = await loadPlaybookFile(file, { playbooksDir: playbooksDir(config), actions });
      const count = plan.steps.reduce((n, node) => n + ('parallel' in node ? node.parallel.length : 1), 0);
      out(`${file}: ok (${count} steps, ${plan.finally.length} finally)`);
    } catch (e) {
      if (!(e instanceof PlaybookError)) throw e;
      failed += 1;
      err(e.message);
    }
  }
  return failed === 0 ? 0 : 1;
}

export function actionsCommand(argv: string[], out: Out): number {
  const { values } = parseArgs({ args: argv, options: { json: { type: 'boolean' } } });
  const described = actions.map((a) => ({
    name: a.name,
    description: a.description,
    policy: a.policy,
    input: z.toJSONSchema(a.input, { io: 'input', unrepresentable: 'any' }),
    examples: a.examples,
  }));
  if (values.json) {
    out(JSON.stringify(described, null, 2));
    return 0;
  }
  for (const a of described) {
    out(`${a.name} — ${a.description}`);
    out(
      `  timeout ${a.policy.timeout} (max ${a.policy.maxTimeout}), ${a.policy.retry.attempts} attempts (max ${a.policy.maxAttempts})`,
    );
    const props =
      (a.input as { properties?: Record<string, { description?: string }>; required?: string[] })
        .properties ?? {};
    const required = new Set((a.input as { required?: string[] }).required ?? []);
    for (const [name, prop] of Object.entries(props)) {
      out(`  ${required.has(name) ? '*' : ' '} ${name}: ${prop.description ?? ''}`);
    }
    out('');
  }
  return 0;
}

export async function schemaCommand(argv: string[], out: Out): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { write: { type: 'boolean' } } });
  const text = JSON.stringify(playbookJsonSchema(actions), null, 2) + '\n';
  if (values.write) {
    const file = path.join(playbooksDir(settings()), 'schema.json');
    await writeFile(file, text);
    out(`wrote ${file}`);
  } else {
    out(text.trimEnd());
  }
  return 0;
}

/** `tunnel-lab server`: the embedded dev server in the foreground, for a Web UI that outlives single runs. */
export async function serverCommand(_argv: string[], out: Out): Promise<number> {
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

/** `--var k=v`: values are read as YAML scalars, so numbers and booleans keep their type. */
export function parseVars(pairs: string[]): Record<string, unknown> {
  const vars: Record<string, unknown> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new ExitError(2, `--var needs NAME=VALUE, got ${JSON.stringify(pair)}`);
    const raw = pair.slice(eq + 1);
    let value: unknown = raw;
    try {
      const parsed: unknown = parseYamlScalar(raw);
      if (parsed === null || ['string', 'number', 'boolean'].includes(typeof parsed)) value = parsed ?? raw;
    } catch {
      value = raw;
    }
    vars[pair.slice(0, eq)] = value;
  }
  return vars;
}

/** A running run answers its progress query only while a worker serves it; don't wait long for none. */
const QUERY_WAIT_MS = 5000;

async function withinMs<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)));
  try {
    return await Promise.race([promise.catch(() => undefined), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function need(value: string | undefined, usage: string): string {
  if (!value) throw new ExitError(2, usage);
  return value;
}
