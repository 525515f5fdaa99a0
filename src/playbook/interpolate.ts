/**
 * `${{ vars.name }}` interpolation. A string that is exactly one expression takes the value's own type
 * (so `count: ${{ vars.n }}` stays a number); expressions inside longer strings are replaced by text.
 */
const EXPRESSION = /\$\{\{\s*([A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*)*)\s*\}\}/g;
const WHOLE = /^\$\{\{\s*([A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*)*)\s*\}\}$/;
const MALFORMED = /\$\{\{(?![^}]*\}\})|\$\{\{\s*[^}]*[^\w.\s-][^}]*\}\}/;

/** The reference of a string that is exactly one expression (`vars.teardown`), else undefined. */
export function wholeExpression(text: string): string | undefined {
  return WHOLE.exec(text)?.[1];
}

export interface InterpolationProblem {
  /** Path of the value that holds the bad expression. */
  path: (string | number)[];
  message: string;
}

/** Interpolates every string inside `value`, mapping keys included (as text); problems are collected, not thrown. */
export function interpolate(
  value: unknown,
  context: Record<string, unknown>,
  path: (string | number)[],
  problems: InterpolationProblem[],
): unknown {
  if (typeof value === 'string') return interpolateString(value, context, path, problems);
  if (Array.isArray(value)) return value.map((item, i) => interpolate(item, context, [...path, i], problems));
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [
        key.includes('${{') ? String(interpolateString(key, context, [...path, key], problems)) : key,
        interpolate(item, context, [...path, key], problems),
      ]),
    );
  }
  return value;
}

function interpolateString(
  text: string,
  context: Record<string, unknown>,
  path: (string | number)[],
  problems: InterpolationProblem[],
): unknown {
  if (!text.includes('${{')) return text;
  if (MALFORMED.test(text)) {
    problems.push({
      path,
      message: `malformed expression in ${JSON.stringify(text)}; write \${{ vars.NAME }}`,
    });
    return text;
  }
  const whole = wholeExpression(text);
  if (whole) return lookup(whole, context, path, problems);
  return text.replace(EXPRESSION, (_, expr: string) => {
    const found = lookup(expr, context, path, problems);
    return typeof found === 'string' ? found : JSON.stringify(found);
  });
}

function lookup(
  expr: string,
  context: Record<string, unknown>,
  path: (string | number)[],
  problems: InterpolationProblem[],
): unknown {
  const [root, ...rest] = expr.split('.');
  if (!(root! in context)) {
    problems.push({
      path,
      message: `unknown namespace "${root}" in \${{ ${expr} }}; known: ${Object.keys(context).join(', ')}`,
    });
    return undefined;
  }
  let current: unknown = context[root!];
  for (const [i, key] of rest.entries()) {
    if (current && typeof current === 'object' && key in current) {
      current = (current as Record<string, unknown>)[key];
    } else {
      const known = current && typeof current === 'object' ? Object.keys(current).sort().join(', ') : '';
      const where = [root, ...rest.slice(0, i + 1)].join('.');
      problems.push({
        path,
        message: `undefined variable ${where} in \${{ ${expr} }}` + (known ? `; defined: ${known}` : ''),
      });
      return undefined;
    }
  }
  return current;
}
