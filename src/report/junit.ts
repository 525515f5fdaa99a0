/**
 * JUnit XML for CI systems (Jenkins, GitLab, GitHub test reporters): one testsuite per run, one testcase per
 * step (finally steps included), in the shape of the Jenkins/Ant JUnit schema.
 */
import type { CellReport, RunReport, StepReport } from './history.js';

/**
 * Renders the report as a JUnit XML document: one testsuite for a run; for a matrix run, one testsuite per
 * cell (`playbook [cell]`), each its run's steps, and a cell that never ran as a skipped testcase.
 */
export function renderJunit(report: RunReport): string {
  const suites = report.cells
    ? report.cells.map((cell, i) =>
        cell.report
          ? suite(cell.report, String(i), `${report.playbook} [${cell.id}]`)
          : notRunSuite(report, cell, String(i)),
      )
    : [suite(report, '0', report.playbook)];
  const total = (key: keyof Suite['counts']) => String(suites.reduce((sum, s) => sum + s.counts[key], 0));
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="tunnel-lab" tests="${total('tests')}" failures="${total('failures')}" errors="${total('errors')}" time="${seconds(runMs(report))}">`,
    ...suites.flatMap((s) => s.lines),
    '</testsuites>',
    '',
  ].join('\n');
}

interface Suite {
  counts: { tests: number; failures: number; errors: number };
  lines: string[];
}

function suite(report: RunReport, id: string, name: string): Suite {
  const cases = report.steps.map((step) => testcase(report, step));
  // A run that failed without a failing step (bad playbook, terminated, timed out) must still fail in CI.
  const stepFailed = report.steps.some((s) => s.status === 'failed');
  const runError = report.status === 'failed' && !stepFailed;
  if (runError) cases.push(runErrorCase(report));
  const failures = report.steps.filter((s) => s.status === 'failed').length;
  const skipped = report.steps.filter((s) => skippedReason(s) !== undefined).length;
  const attrs = {
    name,
    package: 'tunnel-lab',
    id,
    hostname: hostOf(report.workerIdentity),
    timestamp: report.startedAt.replace(/\.\d+Z$|Z$/, ''),
    tests: String(cases.length),
    failures: String(failures),
    errors: runError ? '1' : '0',
    skipped: String(skipped),
    time: seconds(runMs(report)),
  };
  const props: [string, string][] = [
    ['playbook', report.playbook],
    ['playbook.file', report.file ?? ''],
    ['run.id', report.workflowId],
    ['run.temporalRunId', report.runId],
    ['run.status', report.status],
    ['run.temporalStatus', report.temporalStatus],
    ['lab', report.lab ?? ''],
    ['labHost', report.labHost ?? ''],
    ['temporal.namespace', report.namespace],
    ['temporal.taskQueue', report.taskQueue],
    ['temporal.stepQueue', report.stepQueue ?? report.taskQueue],
    ['webUi', report.uiUrl ?? ''],
    ['input', JSON.stringify(report.input)],
    ...Object.entries(report.vars).map(([k, v]): [string, string] => [
      `var.${k}`,
      typeof v === 'string' ? v : JSON.stringify(v),
    ]),
  ];
  const lines = [
    `  <testsuite${attributes(attrs)}>`,
    '    <properties>',
    ...props.map(([name, value]) => `      <property${attributes({ name, value })}/>`),
    '    </properties>',
    ...cases,
    `    <system-out>${text(summaryText(report))}</system-out>`,
    `    <system-err>${text(report.error ?? '')}</system-err>`,
    '  </testsuite>',
  ];
  return { counts: { tests: cases.length, failures, errors: runError ? 1 : 0 }, lines };
}

/** The suite of a matrix cell that started no run (skipped after another cell failed, or cancelled). */
function notRunSuite(matrix: RunReport, cell: CellReport, id: string): Suite {
  const reason = cell.error ?? cell.status;
  const attrs = {
    name: `${matrix.playbook} [${cell.id}]`,
    package: 'tunnel-lab',
    id,
    hostname: hostOf(matrix.workerIdentity),
    timestamp: matrix.startedAt.replace(/\.\d+Z$|Z$/, ''),
    tests: '1',
    failures: '0',
    errors: '0',
    skipped: '1',
    time: '0.000',
  };
  const lines = [
    `  <testsuite${attributes(attrs)}>`,
    `    <testcase${attributes({ name: '(cell)', classname: matrix.playbook, time: '0.000' })}>`,
    `      <skipped${attributes({ message: reason })}/>`,
    '    </testcase>',
    '  </testsuite>',
  ];
  return { counts: { tests: 1, failures: 0, errors: 0 }, lines };
}

function testcase(report: RunReport, step: StepReport): string {
  const classname = [report.playbook, step.phase === 'finally' ? 'finally' : step.group]
    .filter(Boolean)
    .join('.');
  // The step's own name, where it has one, says what the test checks; the id keeps it unique.
  const name = step.name ? `${step.id}: ${step.name}` : step.id;
  const open = `    <testcase${attributes({ name, classname, time: seconds(step.durationMs ?? 0) })}`;
  const body: string[] = [];
  const reason = skippedReason(step);
  if (reason !== undefined) body.push(`      <skipped${attributes({ message: reason })}/>`);
  if (step.status === 'failed') {
    const error = step.error ?? 'failed';
    const type = /^([A-Za-z][\w.]*(?:Error|Failure|Exception)?): /.exec(error)?.[1] ?? 'StepFailed';
    const detail = [
      error,
      '',
      `attempts: ${step.attempts}`,
      ...step.attemptSpans.map(
        (a) =>
          `  attempt ${a.attempt}: ${a.outcome}${a.error ? ` — ${a.error}` : ''}${a.estimated ? ' (times estimated)' : ''}`,
      ),
      ...(step.continueOnError ? ['the step may fail (continueOnError): the run went on'] : []),
    ].join('\n');
    body.push(`      <failure${attributes({ message: firstLine(error), type })}>${text(detail)}</failure>`);
  }
  const evidence = [
    step.summary ? `${step.uses}: ${step.summary}` : step.uses,
    ...(step.expected ? [`expected: ${step.expected}`] : []),
    ...(step.evidence?.length ? ['seen:', ...step.evidence.map((line) => `  ${line}`)] : []),
  ];
  if (step.output !== undefined) evidence.push('', JSON.stringify(step.output, null, 2));
  body.push(`      <system-out>${text(evidence.join('\n'))}</system-out>`);
  return `${open}>\n${body.join('\n')}\n    </testcase>`;
}

function runErrorCase(report: RunReport): string {
  const error = report.error ?? `the run ended ${report.temporalStatus.toLowerCase()}`;
  return [
    `    <testcase${attributes({ name: '(run)', classname: report.playbook, time: seconds(runMs(report)) })}>`,
    `      <error${attributes({ message: firstLine(error), type: 'RunFailed' })}>${text(error)}</error>`,
    '    </testcase>',
  ].join('\n');
}

/** Why a step counts as skipped in CI, or undefined when it ran to an end. */
function skippedReason(step: StepReport): string | undefined {
  switch (step.status) {
    case 'skipped':
      return 'skipped on resume';
    case 'pending':
      return 'not run: an earlier step failed';
    case 'cancelled':
      return 'cancelled';
    case 'running':
      return 'still running when the report was made';
    default:
      return undefined;
  }
}

function summaryText(report: RunReport): string {
  const rows = report.steps.map(
    (s) =>
      `${s.phase === 'finally' ? `${s.id} (finally)` : s.id}: ${s.status}, ${s.attempts} attempt(s)` +
      (s.durationMs === undefined ? '' : `, ${seconds(s.durationMs)}s`),
  );
  return [`${report.playbook}: ${report.status}${report.error ? ` — ${report.error}` : ''}`, ...rows].join(
    '\n',
  );
}

function runMs(report: RunReport): number {
  const end = report.closedAt ?? report.generatedAt;
  return Math.max(0, Date.parse(end) - Date.parse(report.startedAt));
}

function hostOf(identity: string | undefined): string {
  const host = identity?.split('@')[1];
  return host || 'localhost';
}

function seconds(ms: number): string {
  return (ms / 1000).toFixed(3);
}

function firstLine(message: string): string {
  const line = message.split('\n')[0] ?? '';
  return line.length > 500 ? `${line.slice(0, 500)}…` : line;
}

function attributes(values: Record<string, string>): string {
  return (
    Object.entries(values)
      // Parsers turn raw line breaks in attributes into spaces; character references survive.
      .map(([k, v]) => ` ${k}="${escapeXml(v).replace(/\n/g, '&#10;').replace(/\t/g, '&#9;')}"`)
      .join('')
  );
}

function text(value: string): string {
  return escapeXml(value);
}

/**
 * Escapes for XML 1.0 text and attributes. Characters XML 1.0 cannot carry at all (ANSI escapes and other
 * control characters that command output often holds) are shown as `\xNN` instead.
 */
export function escapeXml(value: string): string {
  return value
    .replace(/[&<>"']/g, (c) => `&${{ '&': 'amp', '<': 'lt', '>': 'gt', '"': 'quot', "'": 'apos' }[c]};`)
    .replace(
      // eslint-disable-next-line no-control-regex -- these are exactly the characters to replace
      /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g,
      (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`,
    );
}
