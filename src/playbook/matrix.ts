/**
 * A playbook's `matrix:`: named axes over its variables, expanded into cells as GitHub Actions expands
 * `strategy.matrix`. The cells are every combination of the axes' values, less those an `exclude` entry
 * matches, then the `include` entries: an entry adds its values to every combination whose axis values
 * it leaves as they are (values added by an earlier entry it may change); one that fits no combination
 * is a cell of its own. Each cell runs as a child run of its own.
 */
import { z } from 'zod';
import type { MatrixCell, PlanMatrix } from '../../workflows/types.js';
import type { Path, Problem, YamlSource } from '../yaml-source.js';

/** The most cells one matrix may have: each is a run of its own, started by the parent. */
export const MAX_CELLS = 64;

const value = z.union([z.string(), z.number(), z.boolean()]);
const combination = z.record(z.string(), value);

export const matrixSchema = z
  .object({
    axes: z
      .record(z.string(), z.array(value).min(1))
      .default({})
      .describe('Named axes: a variable of the playbook and the values it takes, one cell per combination.'),
    include: z
      .array(combination)
      .default([])
      .describe(
        'Values added to the cells whose axis values they match, or cells of their own when they match none.',
      ),
    exclude: z
      .array(combination)
      .default([])
      .describe('Combinations left out: every cell whose values match all of an entry.'),
    failFast: z
      .boolean()
      .default(true)
      .describe('Cancel the running cells and skip the others once a cell fails.'),
    maxParallel: z
      .number()
      .int()
      .min(1)
      .optional()
      .describe(
        'How many cells run at once (all by default). Cells that share a lab run one after the other.',
      ),
  })
  .strict()
  .describe('Runs the playbook once per combination of variable values, each as a child run.');

export type MatrixInput = z.output<typeof matrixSchema>;
type Combination = Record<string, string | number | boolean>;

/**
 * The cells of `matrix` (at `at` in `source`), whose variables must be declared in `declared`; problems
 * go to `problems`.
 */
export function expandMatrix(
  matrix: MatrixInput,
  declared: Record<string, unknown>,
  source: YamlSource,
  at: Path,
  problems: Problem[],
): PlanMatrix | undefined {
  const before = problems.length;
  const undeclared = (names: string[], where: Path) => {
    for (const name of names) {
      if (!(name in declared)) {
        problems.push(
          keyProblem(
            source,
            where,
            name,
            `"${name}" is not a variable of the playbook (declared: ${Object.keys(declared).join(', ') || 'none'})`,
          ),
        );
      }
    }
  };
  const axes = Object.keys(matrix.axes);
  undeclared(axes, [...at, 'axes']);
  matrix.include.forEach((entry, i) => undeclared(Object.keys(entry), [...at, 'include', i]));
  matrix.exclude.forEach((entry, i) => {
    undeclared(Object.keys(entry), [...at, 'exclude', i]);
    for (const name of Object.keys(entry)) {
      if (name in declared && !axes.includes(name))
        problems.push(
          keyProblem(source, [...at, 'exclude', i], name, `"${name}" is not an axis of the matrix`),
        );
    }
  });
  if (axes.length === 0 && matrix.include.length === 0)
    problems.push(source.problem(at, 'a matrix needs axes or include entries'));
  if (problems.length > before) return undefined;

  const matches = (cell: Combination, entry: Combination, keys: string[]) =>
    keys.every((key) => cell[key] === entry[key]);
  let cells: Combination[] = axes.length === 0 ? [] : [{}];
  for (const axis of axes) {
    cells = cells.flatMap((cell) => matrix.axes[axis]!.map((v) => ({ ...cell, [axis]: v })));
  }
  cells = cells.filter((cell) => !matrix.exclude.some((entry) => matches(cell, entry, Object.keys(entry))));
  const base = cells.length;
  for (const entry of matrix.include) {
    // An entry extends every combination whose axis values it does not change (an earlier entry's
    // values it may change); it is a cell of its own when there is none.
    const onAxes = Object.keys(entry).filter((key) => axes.includes(key));
    const extended = cells.slice(0, base).filter((cell) => matches(cell, entry, onAxes));
    if (extended.length > 0) for (const cell of extended) Object.assign(cell, entry);
    else cells.push({ ...entry });
  }

  const planned: MatrixCell[] = [];
  const ids = new Map<string, number>();
  cells.forEach((cell) => {
    const id = cellId(cell, axes);
    if (!ids.has(id)) {
      ids.set(id, planned.length);
      planned.push({ id, vars: cell });
    }
  });
  if (planned.length > MAX_CELLS) {
    problems.push(source.problem(at, `${planned.length} cells; a matrix has at most ${MAX_CELLS}`));
    return undefined;
  }
  const result: PlanMatrix = { cells: planned, failFast: matrix.failFast };
  if (matrix.maxParallel !== undefined) result.maxParallel = matrix.maxParallel;
  return result;
}

/** A problem with the name `key` of the map at `at`, placed at the name. */
function keyProblem(source: YamlSource, at: Path, key: string, message: string): Problem {
  return { ...source.problem([...at, key], message), ...source.locateKey(at, key) };
}

/** A cell's id, from its values: the axes in their order, then the other values, as `name=value`. */
export function cellId(cell: Combination, axes: string[]): string {
  const keys = [...axes.filter((a) => a in cell), ...Object.keys(cell).filter((k) => !axes.includes(k))];
  return keys.map((key) => `${key}=${String(cell[key])}`).join(',');
}
