/** Problems in a file shown as compilers show them: the message, then the line with a caret under the spot. */
import { readFileSync } from 'node:fs';
import { formatProblem, type PlaybookError } from '../errors.js';

/** Each problem of the error, followed by its line of the file and a caret at its column. */
export function withCodeFrames(error: PlaybookError): string {
  const files = new Map<string, string[] | undefined>();
  const linesOf = (file: string) => {
    if (!files.has(file)) {
      try {
        files.set(file, readFileSync(file, 'utf8').split('\n'));
      } catch {
        files.set(file, undefined);
      }
    }
    return files.get(file);
  };
  return error.problems
    .map((problem) => {
      const text = problem.line > 0 ? linesOf(problem.file)?.[problem.line - 1] : undefined;
      if (text === undefined) return formatProblem(problem);
      const gutter = String(problem.line).length;
      return [
        formatProblem(problem),
        `  ${String(problem.line)} | ${text}`,
        `  ${' '.repeat(gutter)} | ${' '.repeat(Math.max(0, problem.column - 1))}^`,
      ].join('\n');
    })
    .join('\n');
}
