/**
 * A YAML file as the project's loaders read it (playbooks and lab files): parsed once with its positions,
 * so that every problem found in the value can be reported at its file, line, column and field.
 */
import { isMap, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import type { z } from 'zod';
import { PlaybookError, type SourceLocation } from './errors.js';
import { describeIssue } from './validation.js';

export type Path = (string | number)[];
export type Problem = SourceLocation & { message: string };
type Position = { file: string; line: number; column: number };

/** How many alias expansions a file may use (YAML's own default is 100). */
const MAX_ALIASES = 100;

export class YamlSource {
  private constructor(
    readonly file: string,
    readonly doc: Document,
    private readonly lines: LineCounter,
  ) {}

  /** Parses `text`; a syntax error is a PlaybookError at its place (`file` is used in messages only). */
  static parse(text: string, file: string): YamlSource {
    const lines = new LineCounter();
    const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
    const source = new YamlSource(file, doc, lines);
    if (doc.errors.length > 0) {
      // The first syntax error only: the parser's later ones are mostly its consequences.
      const first = doc.errors[0]!;
      throw new PlaybookError([
        { ...source.at(first.pos[0]), path: '', message: first.message.split('\n')[0]! },
      ]);
    }
    return source;
  }

  /** The plain value; an alias bomb (a few lines that expand to billions of nodes) is refused, not expanded. */
  value(): unknown {
    try {
      return this.doc.toJS({ maxAliasCount: MAX_ALIASES });
    } catch (err) {
      throw new PlaybookError([
        {
          ...this.at(0),
          path: '',
          message: `the YAML cannot be expanded: ${err instanceof Error ? err.message : String(err)}`,
        },
      ]);
    }
  }

  at(offset: number): Position {
    const { line, col } = this.lines.linePos(offset);
    return { file: this.file, line, column: col };
  }

  /** Position of the node at `at`, or of its nearest existing parent. */
  locate(at: Path): Position {
    for (let depth = at.length; depth >= 0; depth--) {
      const node = this.doc.getIn(at.slice(0, depth), true) as Node | undefined;
      if (node && typeof node === 'object' && node.range) return this.at(node.range[0]);
    }
    return { file: this.file, line: 1, column: 1 };
  }

  /** Position of a key inside the map at `at` (for unknown fields). */
  locateKey(at: Path, key: string): Position {
    const node = this.doc.getIn(at, true);
    if (isMap(node)) {
      const pair = node.items.find((item) => (item.key as { value?: unknown } | null)?.value === key);
      const keyNode = pair?.key as Node | undefined;
      if (keyNode?.range) return this.at(keyNode.range[0]);
    }
    return this.locate(at);
  }

  /** A problem with the field at `at`, placed where it is written. */
  problem(at: Path, message: string): Problem {
    return { ...this.locate(at), path: fieldPath(at), message };
  }

  /**
   * The issues of validating a value as problems at their place: `base` is where the validated value sits
   * in the file, `data` the value as validated when it is not the file's own (e.g. after interpolation).
   */
  issues(error: z.ZodError, base: Path, data?: unknown): Problem[] {
    return error.issues.map((issue) => {
      const at: Path = [...base, ...(issue.path as Path)];
      if (issue.code === 'unrecognized_keys') {
        const key = issue.keys[0]!;
        return {
          ...this.locateKey(at, key),
          path: fieldPath([...at, key]),
          message: `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`,
        };
      }
      const exists = this.doc.hasIn(at);
      const value = data === undefined ? toJs(this.doc.getIn(at)) : valueAt(data, issue.path as Path);
      return this.problem(at, describeIssue(issue, exists, value));
    });
  }
}

/** Field path as users read it: `steps[2].with.command`. */
export function fieldPath(at: Path): string {
  return at.reduce<string>(
    (out, key) => (typeof key === 'number' ? `${out}[${key}]` : out ? `${out}.${key}` : key),
    '',
  );
}

/** The value at `at` inside `data`, if there is one. */
export function valueAt(data: unknown, at: Path): unknown {
  let node = data;
  for (const key of at) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string | number, unknown>)[key];
  }
  return node;
}

function toJs(value: unknown): unknown {
  return value && typeof value === 'object' && 'toJSON' in value
    ? (value as { toJSON(): unknown }).toJSON()
    : value;
}
