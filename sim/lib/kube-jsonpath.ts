/**
 * The subset of kubectl's JSONPath templates (https://kubernetes.io/docs/reference/kubectl/jsonpath/) that
 * the stand-in kubectl supports: literal text, `{.a.b}`, `{.items[0].x}`, `{.items[*].x}` (and `[]`, which
 * kubectl reads the same way), `{.data['key']}`, `{.a\.b}` and string literals such as `{"\n"}`.
 * As kubectl does, missing keys print nothing, while an index past the end of a list is an error.
 */

type Step = { key: string } | { index: number } | { all: true };
type Part = { text: string } | { path: Step[]; source: string };

/** A template that cannot be parsed or executed, with kubectl's message. */
export class JsonPathError extends Error {}

export function parseJsonPath(template: string): Part[] {
  const parts: Part[] = [];
  let i = 0;
  while (i < template.length) {
    const open = template.indexOf('{', i);
    if (open === -1) {
      parts.push({ text: template.slice(i) });
      break;
    }
    if (open > i) parts.push({ text: template.slice(i, open) });
    const close = findClose(template, open);
    if (close === -1) throw new JsonPathError(`error parsing jsonpath ${template}, unclosed action`);
    const body = template.slice(open + 1, close).trim();
    const literal = /^"((?:[^"\\]|\\.)*)"$/.exec(body);
    if (literal) parts.push({ text: JSON.parse(`"${literal[1]}"`) as string });
    else parts.push({ path: parsePath(body, template), source: body });
    i = close + 1;
  }
  return parts;
}

function findClose(template: string, open: number): number {
  let quoted = false;
  for (let i = open + 1; i < template.length; i++) {
    const ch = template[i];
    if (ch === '\\') i++;
    else if (ch === '"' || ch === "'") quoted = !quoted;
    else if (ch === '}' && !quoted) return i;
  }
  return -1;
}

function parsePath(body: string, template: string): Step[] {
  const bad = (why: string) => new JsonPathError(`error parsing jsonpath ${template}, ${why}`);
  if (/^(range|end)\b/.test(body)) throw bad('range/end are not supported by the simulated kubectl');
  if (body !== '' && !body.startsWith('.') && !body.startsWith('[') && !body.startsWith('@'))
    throw bad(`unrecognized identifier ${body}`);
  const steps: Step[] = [];
  let i = body.startsWith('@') ? 1 : 0;
  while (i < body.length) {
    const ch = body[i];
    if (ch === '.') {
      i++;
      let key = '';
      while (i < body.length && body[i] !== '.' && body[i] !== '[') {
        if (body[i] === '\\' && i + 1 < body.length) i++;
        key += body[i];
        i++;
      }
      if (key) steps.push({ key });
    } else if (ch === '[') {
      const end = body.indexOf(']', i);
      if (end === -1) throw bad('unclosed array expect ]');
      const inner = body.slice(i + 1, end).trim();
      const quoted = /^'(.*)'$/.exec(inner) ?? /^"(.*)"$/.exec(inner);
      if (quoted) steps.push({ key: quoted[1]! });
      else if (inner === '*' || inner === '') steps.push({ all: true });
      else if (/^-?\d+$/.test(inner)) steps.push({ index: Number(inner) });
      else throw bad(`unsupported array expression [${inner}]`);
      i = end + 1;
    } else {
      throw bad(`unexpected ${ch}`);
    }
  }
  return steps;
}

/** Executes a template against `data` and returns what kubectl prints (without a final newline). */
export function executeJsonPath(template: string, data: unknown): string {
  let out = '';
  for (const part of parseJsonPath(template)) {
    if ('text' in part) {
      out += part.text;
      continue;
    }
    let values: unknown[] = [data];
    for (const step of part.path) {
      const next: unknown[] = [];
      for (const value of values) {
        if ('key' in step) {
          if (value && typeof value === 'object' && !Array.isArray(value) && step.key in value) {
            next.push((value as Record<string, unknown>)[step.key]);
          }
        } else if (Array.isArray(value)) {
          if ('all' in step) next.push(...(value as unknown[]));
          else {
            const index = step.index < 0 ? value.length + step.index : step.index;
            if (index < 0 || index >= value.length) {
              throw new JsonPathError(
                `error executing jsonpath "${template}": Error executing template: array index out of bounds: ` +
                  `index ${step.index}, length ${value.length}. Printing more information for debugging the template:\n` +
                  `\ttemplate was:\n\t\t${template}\n\tobject given to jsonpath engine was:\n\t\t${JSON.stringify(data).slice(0, 500)}\n`,
              );
            }
            next.push(value[index]);
          }
        }
      }
      values = next;
    }
    out += values.map(print).join(' ');
  }
  return out;
}

function print(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value);
}
