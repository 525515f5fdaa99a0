/** Checks and wording shared by the playbook and lab loaders. */
import type { z } from 'zod';

/** True when `pattern` compiles as a JavaScript regular expression. */
export function isRegex(pattern: string): boolean {
  try {
    new RegExp(pattern);
    return true;
  } catch {
    return false;
  }
}

/** What a value looks like to a person: `"zero"`, `3`, `a list`, `a mapping`. */
function shown(value: unknown): string {
  if (value === null || value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return JSON.stringify(value);
}

const KINDS: Record<string, string> = {
  string: 'text',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  array: 'a list',
  object: 'a mapping',
  record: 'a mapping',
};

/** A schema problem in our words: what is wrong, and what is expected. */
export function describeIssue(issue: z.core.$ZodIssue, exists: boolean, value: unknown): string {
  switch (issue.code) {
    case 'invalid_type': {
      const expected = KINDS[issue.expected] ?? issue.expected;
      return exists ? `must be ${expected}, not ${shown(value)}` : `missing; it is required (${expected})`;
    }
    case 'invalid_value':
      return issue.values.length === 1
        ? `must be ${JSON.stringify(issue.values[0])}, not ${shown(value)}`
        : `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}, not ${shown(value)}`;
    case 'too_small':
    case 'too_big': {
      const small = issue.code === 'too_small';
      const limit = String(small ? issue.minimum : issue.maximum);
      const unit = issue.origin === 'array' ? 'item(s)' : issue.origin === 'string' ? 'character(s)' : '';
      if (!unit) return `must be ${small ? 'at least' : 'at most'} ${limit}`;
      return `${small ? 'needs at least' : 'takes at most'} ${limit} ${unit}`;
    }
    case 'invalid_union':
      return `matches none of the forms this field takes (see tunnel-lab actions ACTION)`;
    default:
      // Our own messages (refinements, patterns with a message) are already in our words.
      return issue.message;
  }
}
