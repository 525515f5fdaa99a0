/** Reports of runs: `junit.xml` for CI and `report.html` for people, both built from the run's history. */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { progressWithin } from '../client.js';
import { runUrl } from '../config.js';
import { buildRunReport, type RunReport } from './history.js';
import { cellPage, renderHtml } from './html.js';
import { renderJunit } from './junit.js';

export {
  buildRunReport,
  type AttemptSpan,
  type CellReport,
  type RunReport,
  type StepReport,
} from './history.js';
export { renderHtml } from './html.js';
export { renderJunit } from './junit.js';

export interface CollectOptions {
  namespace: string;
  /** The Web UI's address: the report links to the run (and a matrix run's cells) there. */
  uiBase?: string;
  /**
   * This machine's folders, by the name a report shows instead (e.g. the state root as `$TUNNEL_LAB_STATE`):
   * a shared report names no local paths.
   */
  localPaths?: Record<string, string>;
}

const PROGRESS_TIMEOUT_MS = 3000;

/**
 * Reads a run's history (and, while it runs, its pending activities and progress) and builds its report.
 * Works for finished runs without any worker: closed runs are told by their history alone.
 */
export async function collectRunReport(handle: WorkflowHandle, options: CollectOptions): Promise<RunReport> {
  const report = await collectOne(handle, options);
  // A matrix run's cells are runs of their own: each cell's report comes from its run's history.
  for (const cell of report.cells ?? []) {
    if (cell.status === 'skipped' || cell.status === 'pending') continue;
    const child = handle.client.getHandle(cell.workflowId);
    cell.report = await collectOne(child, options).catch(() => undefined);
  }
  return options.localPaths ? withoutLocalPaths(report, options.localPaths) : report;
}

async function collectOne(handle: WorkflowHandle, options: CollectOptions): Promise<RunReport> {
  const [history, description] = await Promise.all([handle.fetchHistory(), handle.describe()]);
  const running = description.status.name === 'RUNNING';
  // Skipped steps and pauses exist only in the workflow's state; a running run is asked, if a worker answers.
  const progress = running ? await progressWithin(handle, PROGRESS_TIMEOUT_MS) : undefined;
  return buildRunReport(history, {
    workflowId: handle.workflowId,
    runId: description.runId,
    namespace: options.namespace,
    uiUrl: options.uiBase ? runUrl(options.uiBase, options.namespace, handle.workflowId) : undefined,
    pending: running ? description.raw.pendingActivities : undefined,
    progress,
  });
}

/** The report with each local folder written as its name, in every string it holds. */
function withoutLocalPaths(report: RunReport, names: Record<string, string>): RunReport {
  // Longest first, so that a folder inside another is named by its own name.
  const folders = Object.entries(names).sort(([a], [b]) => b.length - a.length);
  const text = JSON.stringify(report);
  const replaced = folders.reduce(
    (acc, [folder, name]) => acc.split(JSON.stringify(folder).slice(1, -1)).join(name),
    text,
  );
  return JSON.parse(replaced) as RunReport;
}

/** The files a report writes into its folder. */
export interface ReportFiles {
  junit: string;
  html: string;
}

/**
 * Writes `junit.xml` and `report.html` into `dir` (created when missing); for a matrix run, also each
 * cell's page (`cells/<n>.html`), which the matrix's page links to.
 */
export async function writeReport(dir: string, report: RunReport): Promise<ReportFiles> {
  await mkdir(dir, { recursive: true });
  const files = { junit: path.join(dir, 'junit.xml'), html: path.join(dir, 'report.html') };
  await writeFile(files.junit, renderJunit(report));
  await writeFile(files.html, renderHtml(report));
  for (const [i, cell] of (report.cells ?? []).entries()) {
    if (!cell.report) continue;
    const page = path.join(dir, cellPage(i));
    await mkdir(path.dirname(page), { recursive: true });
    await writeFile(page, renderHtml(cell.report));
  }
  return files;
}

/** Collects a run's report and writes it into `dir`; what `--report DIR` and `tunnel-lab report` do. */
export async function reportRun(
  handle: WorkflowHandle,
  dir: string,
  options: CollectOptions,
): Promise<ReportFiles & { report: RunReport }> {
  const report = await collectRunReport(handle, options);
  return { ...(await writeReport(path.resolve(dir), report)), report };
}
