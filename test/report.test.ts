/** Reports from real runs on the dev server: the history → report model, junit.xml against the XSD, the HTML page. */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import type { WorkflowHandle } from '@temporalio/client';
import { runUrl } from '../src/config.js';
import {
  collectRunReport,
  renderHtml,
  renderJunit,
  writeReport,
  type RunReport,
} from '../src/report/index.js';
import {
  eventually,
  outcome,
  root,
  serverAddress,
  start,
  uniqueQueue,
  writePlaybook,
  type TestLab,
  useWorker,
} from './support/temporal.js';

const fixture = (name: string) => path.join(root, 'test', 'fixtures', name);
const XSD = fixture('junit.xsd');

let lab: TestLab;
useWorker('report', (created) => (lab = created));

const uiBase = () => process.env.TEMPORAL_TEST_UI || 'http://127.0.0.1:8233';

/** A run with a step that passes on attempt 2, a parallel group, a failing continueOnError step and a finally step. */
async function mixedRun(): Promise<WorkflowHandle> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'report-'));
  const file = await writePlaybook(
    'mixed',
    [
      'name: mixed',
      'description: flaky, parallel, failing and finally steps',
      'vars: { who: "<world>" }',
      'steps:',
      '  - id: flaky',
      '    name: passes on its second attempt',
      '    uses: exec',
      '    retry: { attempts: 3, interval: 300ms }',
      `    with: { command: [node, ${fixture('flaky.mjs')}, ${dir}/count, '2'] }`,
      '  - id: checks',
      '    parallel:',
      '      - { id: markup, uses: exec, with: { command: [echo, \'<script>alert("${{ vars.who }}")</script> & done\'] } }',
      '      - { id: sleeper, uses: exec, with: { command: [sleep, "0.5"] } }',
      '  - id: broken',
      '    uses: exec',
      '    continueOnError: true',
      '    retry: { attempts: 2, interval: 100ms }',
      '    with: { command: [sh, -c, \'echo "<b>bad</b>" >&2; exit 3\'] }',
      'finally:',
      "  - { id: cleanup, uses: exec, with: { command: ['true'] } }",
      '',
    ].join('\n'),
  );
  return start(lab, { playbook: file, vars: { who: '<world>' } });
}

async function xmllint(args: string[]) {
  if (!existsSync('/usr/bin/xmllint')) {
    throw new Error(
      'xmllint is missing: install it with `apt-get install -y --no-install-recommends libxml2-utils`',
    );
  }
  return execa('xmllint', args, { reject: false });
}

describe('run reports', () => {
  let handle: WorkflowHandle;
  let report: RunReport;
  let dir: string;

  beforeAll(async () => {
    handle = await mixedRun();
    const result = await outcome(handle);
    expect(result.status).toBe('passed');
    report = await collectRunReport(handle, {
      namespace: 'default',
      uiBase: uiBase(),
    });
    // Kept as a CI artifact, to look at.
    dir = path.join(root, 'test-artifacts', 'report');
    await writeReport(dir, report);
  });

  it('reads steps, attempts, inputs and the result from the history', () => {
    expect(report).toMatchObject({
      workflowId: handle.workflowId,
      playbook: 'mixed',
      status: 'passed',
      temporalStatus: 'COMPLETED',
      taskQueue: lab.taskQueue,
      input: { vars: { who: '<world>' } },
      vars: { who: '<world>' },
      description: 'flaky, parallel, failing and finally steps',
    });
    expect(report.steps.map((s) => [s.id, s.status, s.phase, s.group, s.attempts])).toEqual([
      ['flaky', 'passed', 'main', undefined, 2],
      ['markup', 'passed', 'main', 'checks', 1],
      ['sleeper', 'passed', 'main', 'checks', 1],
      ['broken', 'failed', 'main', undefined, 2],
      ['cleanup', 'passed', 'finally', undefined, 1],
    ]);
    const flaky = report.steps[0]!.attemptSpans;
    expect(flaky.map((a) => [a.attempt, a.outcome, a.estimated])).toEqual([
      [1, 'failed', true],
      [2, 'passed', false],
    ]);
    expect(flaky[0]!.error).toMatch(/ExpectationError: exit code 1, expected 0 \(output: call 1: not yet\)/);
    // The retry interval separates the two attempts.
    expect(flaky[1]!.start - flaky[0]!.end).toBeGreaterThanOrEqual(250);
    const broken = report.steps[3]!;
    expect(broken.continueOnError).toBe(true);
    expect(broken.attemptSpans.map((a) => a.outcome)).toEqual(['failed', 'failed']);
    expect(broken.error).toMatch(/ExpectationError: exit code 3, expected 0/);
    // The group's steps overlap in time.
    const [markup, sleeper] = [report.steps[1]!.attemptSpans[0]!, report.steps[2]!.attemptSpans[0]!];
    expect(markup.start).toBeLessThan(sleeper.end);
    expect(sleeper.start).toBeLessThan(markup.end);
    expect(report.load).toHaveLength(1);
    expect(report.steps[1]!.output).toMatchObject({ stdout: '<script>alert("<world>")</script> & done' });
  });

  it('writes a junit.xml that the JUnit XSD accepts, with a testcase per step', async () => {
    const file = path.join(dir, 'junit.xml');
    const valid = await xmllint(['--noout', '--schema', XSD, file]);
    expect(valid.stderr).toMatch(/validates/);
    expect(valid.exitCode).toBe(0);
    const xml = await readFile(file, 'utf8');
    const cases = [...xml.matchAll(/<testcase name="([^"]+)" classname="([^"]+)" time="([\d.]+)"/g)];
    expect(cases.map((m) => [m[1], m[2]])).toEqual([
      // A step's name, where it has one, follows its id.
      ['flaky: passes on its second attempt', 'mixed'],
      ['markup', 'mixed.checks'],
      ['sleeper', 'mixed.checks'],
      ['broken', 'mixed'],
      ['cleanup', 'mixed.finally'],
    ]);
    expect(Number(cases[2]![3])).toBeGreaterThanOrEqual(0.5);
    expect(xml).toMatch(
      /<testsuite name="mixed" package="tunnel-lab" id="0" hostname="[^"]+" timestamp="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d" tests="5" failures="1" errors="0" skipped="0" time="[\d.]+">/,
    );
    expect(xml).toMatch(
      /<failure message="ExpectationError: exit code 3, expected 0 \(output: &lt;b&gt;bad&lt;\/b&gt;\)" type="ExpectationError">/,
    );
    expect(xml).toContain(`<property name="run.id" value="${handle.workflowId}"/>`);
    expect(xml).toContain('<property name="playbook" value="mixed"/>');
    expect(xml).toContain(`<property name="temporal.stepQueue" value="${lab.taskQueue}"/>`);
    expect(xml).toContain('<property name="var.who" value="&lt;world&gt;"/>');
    // Each check's system-out says what it expected and what it saw.
    expect(xml).toMatch(/expected: exit code 0\nseen:\n {2}exit 0: &lt;script&gt;/);
    expect(xml).toMatch(/<property name="lab" value="[^"]*"\/>/);
  });

  it('checks junit.xml with a schema that does reject broken reports', async () => {
    const broken = path.join(await mkdtemp(path.join(os.tmpdir(), 'junit-')), 'broken.xml');
    const xml = await readFile(path.join(dir, 'junit.xml'), 'utf8');
    await writeFile(
      broken,
      xml.replace(/ time="[\d.]+">\n {6}<system-out>exec: exec true/, '>\n      <system-out>'),
    );
    expect((await xmllint(['--noout', '--schema', XSD, broken])).exitCode).not.toBe(0);
  });

  it('marks skipped and pending steps <skipped/> and a run that failed without a failing step as an error', async () => {
    const skipped: RunReport = {
      ...report,
      status: 'failed',
      temporalStatus: 'TERMINATED',
      error: 'terminated: by hand',
      steps: report.steps.map((s, i) => ({
        ...s,
        status: i === 0 ? 'skipped' : i === 1 ? 'pending' : 'passed',
        error: undefined,
      })),
    };
    const file = path.join(await mkdtemp(path.join(os.tmpdir(), 'junit-')), 'skipped.xml');
    await writeFile(file, renderJunit(skipped));
    expect((await xmllint(['--noout', '--schema', XSD, file])).exitCode).toBe(0);
    const xml = await readFile(file, 'utf8');
    expect(xml.match(/<skipped message=/g)).toHaveLength(2);
    expect(xml).toMatch(/tests="6" failures="0" errors="1" skipped="2"/);
    expect(xml).toContain('<error message="terminated: by hand" type="RunFailed">');
  });

  it('writes one self-contained report.html with header, timeline, table and escaped evidence', async () => {
    const html = await readFile(path.join(dir, 'report.html'), 'utf8');
    expect(html).toMatch(/^<!DOCTYPE html>/);
    expect(html).toContain(`<code>${handle.workflowId}</code>`);
    expect(html).toContain(`href="${runUrl(uiBase(), 'default', handle.workflowId)}"`);
    for (const id of ['flaky', 'markup', 'sleeper', 'broken', 'cleanup']) {
      expect(html).toContain(`id="evidence-${id}"`);
      expect(html).toContain(`<tr class="step" data-step="${id}">`);
    }
    // One bar per attempt: 2 + 1 + 1 + 2 + 1, plus loading the playbook.
    const bars = [
      ...html.matchAll(/<rect class="bar outcome-(\w[\w-]*)[^"]*" data-step="([^"]+)" data-attempt="(\d+)"/g),
    ];
    expect(bars).toHaveLength(8);
    const barsOf = (id: string) => bars.filter((b) => b[2] === id).map((b) => `${b[3]}:${b[1]}`);
    expect(barsOf('flaky')).toEqual(['1:failed', '2:passed']);
    expect(barsOf('broken')).toEqual(['1:failed', '2:failed']);
    expect(barsOf('cleanup')).toEqual(['1:passed']);
    expect(html).toContain('<rect class="group" data-group="checks"');
    // Evidence: what the check expected beside what it saw, escaped; its raw output, pretty JSON, behind a click.
    expect(html).toContain('<tr><th>expected</th><td>exit code 0</td></tr>');
    expect(html).toContain(
      '<pre class="seen">exit 0: &lt;script&gt;alert(&quot;&lt;world&gt;&quot;)&lt;/script&gt; &amp; done</pre>',
    );
    expect(html).toContain('<details><summary>output</summary>');
    expect(html).toContain(
      '&quot;stdout&quot;: &quot;&lt;script&gt;alert(\\&quot;&lt;world&gt;\\&quot;)&lt;/script&gt; &amp; done&quot;',
    );
    expect(html).not.toContain('<script');
    expect(html).toContain('&quot;who&quot;: &quot;&lt;world&gt;&quot;');
    // Self-contained: no scripts, stylesheets, images or fonts from elsewhere; the only URL is the Web UI link.
    expect(html).not.toMatch(/<link|<img|<iframe|@import|\ssrc=/i);
    const urls = [...html.matchAll(/\b(?:https?:)?\/\/[^\s"'<)]+/g)].map((m) => m[0]);
    expect(urls.every((u) => u.startsWith(uiBase()))).toBe(true);
    expect(renderHtml(report)).toBe(renderHtml(report));
  });
});

describe('reports of resumed, running and cancelled runs', () => {
  it('counts the attempts of a step retried after a pause across its activity executions', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'report-pause-'));
    const file = await writePlaybook(
      'gated',
      `name: gated\nonFailure: pause\nsteps:\n  - { id: gate, uses: exec, retry: { attempts: 1 }, with: { command: [test, -e, ${dir}/open] } }\n`,
    );
    const handle = await start(lab, { playbook: file });
    await eventually(async () => {
      const state = await handle.query<{ status: string }>('progress');
      return state.status === 'paused' ? true : undefined;
    });
    const paused = await collectRunReport(handle, { namespace: 'default' });
    expect(paused).toMatchObject({ status: 'paused', temporalStatus: 'RUNNING' });
    expect(paused.closedAt).toBeUndefined();
    await writeFile(path.join(dir, 'open'), '');
    await handle.executeUpdate('resume', { args: [{ action: 'retry' }] });
    await handle.result();
    const report = await collectRunReport(handle, { namespace: 'default' });
    expect(
      report.steps[0]!.attemptSpans.map((a) => [a.attempt, a.activityId, a.outcome, a.estimated]),
    ).toEqual([
      [1, 'gate', 'failed', false],
      [2, 'gate#2', 'passed', false],
    ]);
    expect(renderHtml(report).match(/data-step="gate" data-attempt/g)).toHaveLength(2);
  });

  it('reports a run while it runs, and after it was cancelled, from its history alone', async () => {
    const file = await writePlaybook(
      'cancelled',
      "name: cancelled\nsteps:\n  - { id: long, uses: exec, with: { command: [sleep, '30'] } }\n  - { id: never, uses: exec, with: { command: ['true'] } }\nfinally:\n  - { id: cleanup, uses: exec, with: { command: ['true'] } }\n",
    );
    const handle = await start(lab, { playbook: file });
    const runningReport = await eventually(async () => {
      const r = await collectRunReport(handle, { namespace: 'default' });
      return r.steps[0]?.attemptSpans[0]?.outcome === 'running' ? r : undefined;
    });
    expect(runningReport.steps.map((s) => s.status)).toEqual(['running', 'pending', 'pending']);
    await handle.cancel();
    await handle.result().catch(() => undefined);
    const report = await collectRunReport(handle, { namespace: 'default' });
    expect(report).toMatchObject({
      status: 'cancelled',
      temporalStatus: 'CANCELED',
      error: 'the run was cancelled',
    });
    expect(report.steps.map((s) => [s.id, s.status])).toEqual([
      ['long', 'cancelled'],
      ['never', 'cancelled'],
      ['cleanup', 'passed'],
    ]);
    expect(report.steps[0]!.attemptSpans.map((a) => a.outcome)).toEqual(['cancelled']);
    const xml = renderJunit(report);
    expect(xml).toMatch(/tests="3" failures="0" errors="0" skipped="2"/);
    const junit = path.join(await mkdtemp(path.join(os.tmpdir(), 'junit-')), 'junit.xml');
    await writeFile(junit, xml);
    expect((await xmllint(['--noout', '--schema', XSD, junit])).exitCode).toBe(0);
  });
});

describe('tunnel-lab run --report and tunnel-lab report', () => {
  const cli = (args: string[], stateRoot: string, taskQueue: string) =>
    execa('node', [path.join(root, 'bin', 'tunnel-lab.js'), ...args], {
      env: {
        TEMPORAL_ADDRESS: serverAddress(),
        TEMPORAL_TASK_QUEUE: taskQueue,
        TEMPORAL_UI_URL: uiBase(),
        TUNNEL_LAB_STATE: stateRoot,
      },
      reject: false,
      all: true,
    });

  it('writes a report after a run, and again later for the same run id', async () => {
    const out = await mkdtemp(path.join(os.tmpdir(), 'report-cli-'));
    const id = uniqueQueue('report-cli');
    const queue = uniqueQueue('report-cli-queue');
    const run = await cli(
      ['run', 'hello', '--id', id, '--report', path.join(out, 'a')],
      lab.stateRoot,
      queue,
    );
    expect(run.exitCode).toBe(0);
    const link = `Web UI: ${runUrl(uiBase(), 'default', id)}`;
    // The link comes at the start and again under the summary.
    expect(run.stdout.split('\n').filter((l) => l === link)).toHaveLength(2);
    expect(run.stdout).toMatch(/hello: passed\nWeb UI: /);
    expect(run.stdout).toContain(
      `report: ${path.join(out, 'a', 'report.html')} and ${path.join(out, 'a', 'junit.xml')}`,
    );
    const later = await cli(['report', id, path.join(out, 'b')], lab.stateRoot, queue);
    expect(later.exitCode).toBe(0);
    for (const name of ['junit.xml', 'report.html']) {
      const [a, b] = await Promise.all([
        readFile(path.join(out, 'a', name), 'utf8'),
        readFile(path.join(out, 'b', name), 'utf8'),
      ]);
      // Same run, same history: only the build time differs.
      const strip = (s: string) => s.replace(/<p class="muted">Report of run .*<\/p>/, '');
      expect(strip(b)).toBe(strip(a));
    }
    expect((await xmllint(['--noout', '--schema', XSD, path.join(out, 'b', 'junit.xml')])).exitCode).toBe(0);
    const usage = await cli(['report', id], lab.stateRoot, queue);
    expect(usage.exitCode).toBe(2);
    expect(usage.stderr).toMatch(/usage: tunnel-lab report RUN_ID DIR/);
  });
});
