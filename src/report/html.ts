/**
 * One self-contained HTML page for a run: header, a Gantt-style timeline of the steps' attempts, a table of
 * the steps and each step's evidence (its output). Inline CSS and SVG only, so the file can be archived as
 * a CI artifact and opened anywhere, offline.
 */
import type { AttemptOutcome, AttemptSpan, CellReport, RunReport, StepReport } from './history.js';

const COLORS: Record<AttemptOutcome, string> = {
  passed: '#2e7d32',
  failed: '#c62828',
  'timed-out': '#ef6c00',
  cancelled: '#757575',
  running: '#1565c0',
};

const STATUS_COLORS: Record<string, string> = {
  passed: '#2e7d32',
  failed: '#c62828',
  cancelled: '#757575',
  skipped: '#8d6e63',
  pending: '#9e9e9e',
  running: '#1565c0',
  paused: '#ef6c00',
};

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#212121;background:#fff}
h1{font-size:22px;margin:0 0 8px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #e0e0e0;padding-bottom:4px}
h3{font-size:15px;margin:18px 0 6px}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-size:12px;font-weight:600;vertical-align:middle}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:8px 0}dl.meta dt{color:#616161}dl.meta dd{margin:0}
table{border-collapse:collapse;margin:8px 0}th,td{border:1px solid #e0e0e0;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f5f5f5}td.num{text-align:right}
pre{background:#f7f7f7;border:1px solid #e0e0e0;padding:8px;overflow:auto;max-height:480px;white-space:pre-wrap;word-break:break-word}
.error{color:#b71c1c}.muted{color:#757575}
table.check th{width:6em}table.check pre{margin:0;border:0;padding:0;background:none}
svg.timeline{width:100%;height:auto;max-width:1200px;font:12px system-ui,sans-serif}
svg.timeline .axis line{stroke:#e0e0e0}svg.timeline .axis text{fill:#757575}
svg.timeline .group{fill:#e3f2fd}svg.timeline .label{fill:#212121}svg.timeline .group-label{fill:#1565c0;font-style:italic}
svg.timeline .estimated{fill-opacity:.55;stroke-dasharray:3 2}
.legend span{display:inline-block;margin-right:14px}.legend i{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:-1px;border-radius:2px}
`;

/** Renders the report as a complete HTML document. */
export function renderHtml(report: RunReport): string {
  const title = `${report.playbook}: ${report.status}`;
  return [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${esc(title)} — tunnel-lab report</title>`,
    `<style>${CSS}</style>`,
    '</head>',
    '<body>',
    header(report),
    ...(report.cells
      ? ['<h2>Cells</h2>', cellsGrid(report.cells), cellsTable(report.cells)]
      : [
          '<h2>Timeline</h2>',
          timeline(report),
          legend(),
          '<h2>Steps</h2>',
          stepsTable(report),
          '<h2>Evidence</h2>',
          ...report.steps.map(evidence),
        ]),
    `<p class="muted">Report of run ${esc(report.workflowId)}, built from its Temporal history at ${esc(report.generatedAt)}.</p>`,
    '</body>',
    '</html>',
    '',
  ].join('\n');
}

function header(report: RunReport): string {
  const rows: [string, string][] = [
    ['Run', `<code>${esc(report.workflowId)}</code>`],
    ['Temporal run id', `<code>${esc(report.runId)}</code>`],
    ['Status', `${badge(report.status)} <span class="muted">Temporal: ${esc(report.temporalStatus)}</span>`],
    ['Started', esc(report.startedAt)],
    ['Ended', report.closedAt ? esc(report.closedAt) : '<span class="muted">still running</span>'],
    ['Duration', esc(duration(runMs(report)))],
  ];
  if (report.uiUrl) {
    rows.push(['Web UI', `<a href="${esc(report.uiUrl)}">${esc(report.uiUrl)}</a>`]);
  }
  if (report.file) rows.push(['Playbook file', `<code>${esc(report.file)}</code>`]);
  if (report.lab) rows.push(['Lab', esc(report.lab)]);
  if (report.labHost) rows.push(['Lab host', esc(report.labHost)]);
  rows.push(['Namespace / task queue', `${esc(report.namespace)} / ${esc(report.taskQueue)}`]);
  if (report.stepQueue && report.stepQueue !== report.taskQueue) {
    rows.push(['Steps ran on queue', esc(report.stepQueue)]);
  }
  if (report.workerIdentity) rows.push(['Worker', esc(report.workerIdentity)]);

  const vars = Object.entries(report.vars);
  return [
    `<h1>${esc(report.playbook)} ${badge(report.status)}</h1>`,
    report.description ? `<p>${esc(report.description)}</p>` : '',
    report.error ? `<p class="error"><strong>Error:</strong> ${esc(report.error)}</p>` : '',
    `<dl class="meta">${rows.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${v}</dd>`).join('')}</dl>`,
    '<h2>Inputs</h2>',
    `<pre class="input">${esc(JSON.stringify(report.input, null, 2))}</pre>`,
    vars.length === 0
      ? '<p class="muted">The playbook has no variables.</p>'
      : `<table class="vars"><tr><th>variable</th><th>value</th></tr>${vars
          .map(
            ([k, v]) =>
              `<tr><td><code>${esc(k)}</code></td><td><code>${esc(typeof v === 'string' ? v : JSON.stringify(v))}</code></td></tr>`,
          )
          .join('')}</table>`,
  ]
    .filter(Boolean)
    .join('\n');
}

interface Row {
  kind: 'step' | 'group' | 'load' | 'finally';
  label: string;
  step?: StepReport;
  spans: AttemptSpan[];
  /** Rows of a parallel group share a band. */
  band?: string;
  indent?: boolean;
}

const WIDTH = 1000;
const LABEL = 230;
const RIGHT = 20;
const ROW = 24;
const BAR = 14;
const TOP = 28;

function timeline(report: RunReport): string {
  const rows: Row[] = [];
  if (report.load) rows.push({ kind: 'load', label: 'load playbook', spans: report.load });
  let group: string | undefined;
  let finallyShown = false;
  for (const step of report.steps) {
    if (step.phase === 'finally' && !finallyShown) {
      rows.push({ kind: 'finally', label: 'finally', spans: [] });
      finallyShown = true;
    }
    const band = step.phase === 'main' ? step.group : undefined;
    if (band && band !== group) rows.push({ kind: 'group', label: `∥ ${band} (parallel)`, spans: [], band });
    group = band;
    rows.push({ kind: 'step', label: step.id, step, spans: step.attemptSpans, band, indent: Boolean(band) });
  }

  const start = Date.parse(report.startedAt);
  const spans = rows.flatMap((r) => r.spans);
  const end = Math.max(
    Date.parse(report.closedAt ?? report.generatedAt),
    ...spans.map((s) => s.end),
    start + 1,
  );
  const chart = WIDTH - LABEL - RIGHT;
  const x = (t: number) => LABEL + ((Math.min(Math.max(t, start), end) - start) / (end - start)) * chart;
  const height = TOP + rows.length * ROW + 8;

  const parts: string[] = [];
  parts.push(
    `<svg class="timeline" viewBox="0 0 ${WIDTH} ${height}" role="img" aria-label="timeline of the steps">`,
  );
  parts.push(
    '<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">' +
      '<line x1="0" y1="0" x2="0" y2="6" stroke="#fff" stroke-width="2" stroke-opacity=".5"/></pattern></defs>',
  );
  // Bands first so that they lie under the axis lines and the bars.
  rows.forEach((row, i) => {
    if (!row.band || (i > 0 && rows[i - 1]!.band === row.band)) return;
    const count = rows.slice(i).findIndex((r) => r.band !== row.band);
    const n = count === -1 ? rows.length - i : count;
    parts.push(
      `<rect class="group" data-group="${esc(row.band)}" x="0" y="${TOP + i * ROW}" width="${WIDTH}" height="${n * ROW}"/>`,
    );
  });
  parts.push('<g class="axis">');
  for (const tick of ticks(end - start)) {
    const tx = x(start + tick).toFixed(1);
    parts.push(
      `<line x1="${tx}" y1="${TOP - 6}" x2="${tx}" y2="${height - 4}"/><text x="${tx}" y="${TOP - 10}" text-anchor="middle">${esc(duration(tick))}</text>`,
    );
  }
  parts.push('</g>');
  rows.forEach((row, i) => {
    const y = TOP + i * ROW;
    const cls = row.kind === 'group' || row.kind === 'finally' ? 'group-label' : 'label';
    const status = row.step ? ` <tspan class="muted" fill="#757575">${esc(row.step.status)}</tspan>` : '';
    parts.push(
      `<text class="${cls}" x="${row.indent ? 22 : 8}" y="${y + ROW / 2 + 4}">${esc(row.label)}${status}</text>`,
    );
    if (row.kind === 'finally') {
      parts.push(
        `<line x1="0" y1="${y + 1}" x2="${WIDTH}" y2="${y + 1}" stroke="#9e9e9e" stroke-dasharray="4 3"/>`,
      );
    }
    for (const span of row.spans) {
      const x1 = x(span.start);
      const w = Math.max(2, x(span.end) - x1);
      const stepId = row.step?.id ?? 'load';
      const tip =
        `${stepId} — attempt ${span.attempt}: ${span.outcome}, ${duration(span.end - span.start)}` +
        ` (${new Date(span.start).toISOString()} → ${new Date(span.end).toISOString()})` +
        (span.estimated ? ', times estimated from the retry policy' : '') +
        (span.error ? `\n${span.error}` : '');
      const classes = ['bar', `outcome-${span.outcome}`, span.estimated ? 'estimated' : ''].filter(Boolean);
      parts.push(
        `<g><rect class="${classes.join(' ')}" data-step="${esc(stepId)}" data-attempt="${span.attempt}" ` +
          `x="${x1.toFixed(1)}" y="${y + (ROW - BAR) / 2}" width="${w.toFixed(1)}" height="${BAR}" rx="2" ` +
          `fill="${COLORS[span.outcome]}" stroke="${COLORS[span.outcome]}"><title>${esc(tip)}</title></rect>` +
          (span.estimated
            ? `<rect x="${x1.toFixed(1)}" y="${y + (ROW - BAR) / 2}" width="${w.toFixed(1)}" height="${BAR}" fill="url(#hatch)" pointer-events="none"/>`
            : '') +
          (w > 26
            ? `<text x="${(x1 + 4).toFixed(1)}" y="${y + ROW / 2 + 4}" fill="#fff" pointer-events="none">${span.attempt}</text>`
            : '') +
          '</g>',
      );
    }
  });
  parts.push('</svg>');
  return parts.join('\n');
}

function legend(): string {
  const items = (Object.keys(COLORS) as AttemptOutcome[]).map(
    (o) => `<span><i style="background:${COLORS[o]}"></i>${esc(o)}</span>`,
  );
  items.push(
    `<span><i style="background:${COLORS.failed};opacity:.55"></i>lighter: an earlier attempt, its times estimated (Temporal's history records the last attempt's times only)</span>`,
  );
  return `<p class="legend">Each bar is one attempt, numbered. ${items.join('')}</p>`;
}

function stepsTable(report: RunReport): string {
  const head =
    '<tr><th>step</th><th>action</th><th>phase</th><th>status</th><th>attempts</th><th>started</th><th>duration</th><th>error</th></tr>';
  const rows = report.steps.map((s) => {
    const phase = s.phase === 'finally' ? 'finally' : s.group ? `parallel: ${s.group}` : 'main';
    const name = s.name ? ` <span class="muted">${esc(s.name)}</span>` : '';
    return (
      `<tr class="step" data-step="${esc(s.id)}"><td><a href="#evidence-${esc(s.id)}"><code>${esc(s.id)}</code></a>${name}</td>` +
      `<td>${esc(s.uses)}</td><td>${esc(phase)}${s.continueOnError ? ' <span class="muted">(may fail)</span>' : ''}</td>` +
      `<td>${badge(s.status)}</td><td class="num">${s.attempts}</td>` +
      `<td>${esc(s.startedAt ?? '')}</td><td class="num">${s.durationMs === undefined ? '' : esc(duration(s.durationMs))}</td>` +
      `<td class="error">${esc(s.error ?? '')}</td></tr>`
    );
  });
  return `<table class="steps">${head}${rows.join('')}</table>`;
}

function evidence(step: StepReport): string {
  const parts = [
    `<section class="evidence" id="evidence-${esc(step.id)}">`,
    `<h3><code>${esc(step.id)}</code> ${badge(step.status)}</h3>`,
  ];
  if (step.summary) parts.push(`<p><code>${esc(step.summary)}</code></p>`);
  if (step.error) parts.push(`<p class="error">${esc(step.error)}</p>`);
  const failures = step.attemptSpans.filter((a) => a.error && a.outcome !== 'passed');
  if (failures.length > 0) {
    parts.push(
      `<ul class="attempts">${failures.map((a) => `<li>attempt ${a.attempt}: ${esc(a.outcome)} — ${esc(a.error ?? '')}</li>`).join('')}</ul>`,
    );
  }
  // What the step saw, for people; the raw output stays one click away.
  const seen = step.evidence && step.evidence.length > 0 ? step.evidence.join('\n') : undefined;
  if (step.expected || seen) {
    parts.push(
      '<table class="check">',
      `<tr><th>expected</th><td>${step.expected ? esc(step.expected) : '<span class="muted">—</span>'}</td></tr>`,
      `<tr><th>seen</th><td>${seen ? `<pre class="seen">${esc(seen)}</pre>` : `<span class="muted">${step.status === 'passed' || step.status === 'failed' ? 'nothing recorded' : esc(step.status)}</span>`}</td></tr>`,
      '</table>',
    );
  }
  if (step.output === undefined) {
    if (!step.evidence) parts.push('<p class="muted">No output recorded.</p>');
  } else {
    parts.push(
      `<details><summary>output</summary><pre class="output">${esc(JSON.stringify(step.output, null, 2))}</pre></details>`,
    );
  }
  parts.push('</section>');
  return parts.join('\n');
}

/** Where a matrix report's page of a cell is, relative to the matrix's own page (see writeReport). */
export function cellPage(index: number): string {
  return `cells/${index + 1}.html`;
}

function cellLink(cell: CellReport, index: number, text: string): string {
  return cell.report ? `<a href="${esc(cellPage(index))}">${text}</a>` : text;
}

/**
 * The cells as a grid over the two or more variables every cell sets (the axes; values an `include` entry
 * adds to some cells only are left out): one row per combination of all but the last, one column per
 * value of the last. Nothing when fewer are shared, or when two cells would share a place (the table
 * below lists them all).
 */
function cellsGrid(cells: CellReport[]): string {
  const keys = Object.keys(cells[0]?.vars ?? {}).filter((k) => cells.every((c) => k in c.vars));
  if (keys.length < 2) return '';
  const place = (c: CellReport) => keys.map((k) => String(c.vars[k])).join('\0');
  if (new Set(cells.map(place)).size !== cells.length) return '';
  const last = keys.at(-1)!;
  const rowKey = (c: CellReport) =>
    keys
      .slice(0, -1)
      .map((k) => String(c.vars[k]))
      .join(', ');
  const rows = [...new Set(cells.map(rowKey))];
  const columns = [...new Set(cells.map((c) => String(c.vars[last])))];
  const head = `<tr><th>${esc(keys.slice(0, -1).join(', '))} \\ ${esc(last)}</th>${columns.map((c) => `<th>${esc(c)}</th>`).join('')}</tr>`;
  const body = rows.map((row) => {
    const tds = columns.map((column) => {
      const index = cells.findIndex((c) => rowKey(c) === row && String(c.vars[last]) === column);
      return index < 0
        ? '<td class="muted">—</td>'
        : `<td>${cellLink(cells[index]!, index, badge(cells[index]!.status))}</td>`;
    });
    return `<tr><th>${esc(row)}</th>${tds.join('')}</tr>`;
  });
  return `<table class="grid">${head}${body.join('')}</table>`;
}

function cellsTable(cells: CellReport[]): string {
  const head = '<tr><th>cell</th><th>status</th><th>duration</th><th>run</th><th>error</th></tr>';
  const rows = cells.map(
    (c, i) =>
      `<tr class="cell"><td>${cellLink(c, i, `<code>${esc(c.id)}</code>`)}</td><td>${badge(c.status)}</td>` +
      `<td class="num">${c.durationMs === undefined ? '' : esc(duration(c.durationMs))}</td>` +
      `<td><code>${esc(c.workflowId)}</code></td><td class="error">${c.status === 'passed' ? '' : esc(c.error ?? '')}</td></tr>`,
  );
  return `<table class="cells">${head}${rows.join('')}</table>`;
}

function badge(status: string): string {
  return `<span class="badge" style="background:${STATUS_COLORS[status] ?? '#616161'}">${esc(status)}</span>`;
}

/** Tick spacing giving at most about ten ticks over the run. */
function ticks(totalMs: number): number[] {
  const steps = [
    10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000,
    900_000, 1_800_000, 3_600_000, 7_200_000, 21_600_000, 43_200_000, 86_400_000,
  ];
  const step = steps.find((s) => totalMs / s <= 10) ?? Math.ceil(totalMs / 10);
  const out: number[] = [];
  for (let t = 0; t <= totalMs; t += step) out.push(t);
  return out;
}

function runMs(report: RunReport): number {
  return Math.max(0, Date.parse(report.closedAt ?? report.generatedAt) - Date.parse(report.startedAt));
}

function duration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)}s`;
  const minutes = Math.floor(ms / 60_000);
  const secs = Math.round((ms % 60_000) / 1000);
  return minutes < 60 ? `${minutes}m${secs}s` : `${Math.floor(minutes / 60)}h${minutes % 60}m`;
}

/** Escapes text for HTML content and attribute values. */
export function esc(value: string): string {
  return value.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );
}
