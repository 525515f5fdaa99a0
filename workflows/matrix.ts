/**
 * A matrix run: one child `tunnelScenario` run per cell of the playbook's matrix, at most `maxParallel`
 * at once. Cells that share a lab still run one after the other, each holding the lab's lease (see
 * labLease.ts). With `failFast`, the first cell that does not pass cancels the running cells (their
 * `finally` steps run) and the cells not started are skipped. Cancelling the matrix run cancels its cells.
 */
import {
  ApplicationFailure,
  CancellationScope,
  ChildWorkflowFailure,
  defineSignal,
  executeChild,
  isCancellation,
  setHandler,
  TerminatedFailure,
  workflowInfo,
} from '@temporalio/workflow';
import {
  CELL_PAUSED,
  cellWorkflowIds,
  WORKFLOW_TYPE,
  type CellPauseSignal,
  type CellRecord,
  type PlanMatrix,
  type ScenarioInput,
  type ScenarioResult,
} from './types.js';

/** A cell's run tells its matrix run that it paused on a failure, or runs again. */
export const cellPausedSignal = defineSignal<[CellPauseSignal]>(CELL_PAUSED);

/** Runs the cells, keeping `state.cells` up to date (and calling `publish` on each change). */
export async function runCells(
  input: ScenarioInput,
  matrix: PlanMatrix,
  state: ScenarioResult,
  publish: () => void,
): Promise<void> {
  const ids = cellWorkflowIds(workflowInfo().workflowId, matrix.cells);
  const cells: CellRecord[] = matrix.cells.map((cell, i) => ({
    id: cell.id,
    vars: cell.vars,
    workflowId: ids[i]!,
    status: 'pending',
  }));
  state.cells = cells;
  publish();
  setHandler(cellPausedSignal, ({ workflowId, paused }) => {
    const cell = cells.find((c) => c.workflowId === workflowId);
    if (!cell || cell.status !== 'running') return;
    if (paused) cell.paused = paused;
    else delete cell.paused;
    publish();
  });

  const queue = [...cells];
  const running = new Map<CellRecord, CancellationScope>();
  let stoppedBy: CellRecord | undefined;

  const runCell = async (cell: CellRecord): Promise<void> => {
    const started = Date.now();
    cell.status = 'running';
    cell.startedAt = new Date(started).toISOString();
    publish();
    const scope = new CancellationScope();
    running.set(cell, scope);
    try {
      const childInput: ScenarioInput = { ...input, vars: { ...input.vars, ...cell.vars }, cell: cell.id };
      await scope.run(() => executeChild(WORKFLOW_TYPE, { workflowId: cell.workflowId, args: [childInput] }));
      cell.status = 'passed';
    } catch (err) {
      if (isCancellation(err)) {
        cell.status = 'cancelled';
        cell.error =
          stoppedBy && stoppedBy !== cell
            ? `cancelled: cell ${stoppedBy.id} did not pass (failFast)`
            : 'cancelled';
      } else {
        cell.status = 'failed';
        cell.error = failureOf(err);
      }
      if (matrix.failFast && !stoppedBy && !CancellationScope.current().consideredCancelled) {
        stoppedBy = cell;
        for (const [other, otherScope] of running) if (other !== cell) otherScope.cancel();
      }
    } finally {
      running.delete(cell);
      delete cell.paused;
      cell.durationMs = Date.now() - started;
      publish();
    }
  };

  const lanes = Math.min(matrix.maxParallel ?? cells.length, cells.length);
  await Promise.all(
    Array.from({ length: lanes }, async () => {
      while (queue.length > 0 && !stoppedBy && !CancellationScope.current().consideredCancelled) {
        await runCell(queue.shift()!);
      }
    }),
  );
  for (const cell of queue) {
    cell.status = 'skipped';
    cell.error = stoppedBy
      ? `skipped: cell ${stoppedBy.id} did not pass (failFast)`
      : 'the run was cancelled';
  }
  publish();
}

/** Why a cell's child run failed, in one line. */
function failureOf(err: unknown): string {
  const cause = err instanceof ChildWorkflowFailure ? err.cause : err;
  if (cause instanceof TerminatedFailure) return 'its run was terminated';
  if (cause instanceof ApplicationFailure || cause instanceof Error) return cause.message;
  return String(cause);
}
