/**
 * docs/actions.md: the reference of every action (inputs, defaults, policy, examples), generated from the
 * registry by `tunnel-lab actions --markdown` and checked for drift by the tests.
 */
import { z } from 'zod';
import type { ActionDefinition } from '../../activities/action.js';

interface JsonSchema {
  type?: string | string[];
  description?: string;
  default?: unknown;
  enum?: unknown[];
  const?: unknown;
  items?: JsonSchema;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  anyOf?: JsonSchema[];
  additionalProperties?: JsonSchema | boolean;
}

/** A field's type in a few words: `string`, `list of string`, `"keep" | "halt"`, `object`. */
function typeOf(schema: JsonSchema): string {
  if (schema.enum) return schema.enum.map((v) => JSON.stringify(v)).join(' \\| ');
  if (schema.const !== undefined) return JSON.stringify(schema.const);
  if (schema.anyOf) return schema.anyOf.map(typeOf).join(' or ');
  if (schema.type === 'array') return `list of ${schema.items ? typeOf(schema.items) : 'values'}`;
  if (
    schema.type === 'object' &&
    schema.additionalProperties &&
    typeof schema.additionalProperties === 'object'
  )
    return `map of ${typeOf(schema.additionalProperties)}`;
  return Array.isArray(schema.type) ? schema.type.join(' or ') : (schema.type ?? 'any');
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function section(action: ActionDefinition): string[] {
  const schema = z.toJSONSchema(action.input, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  const required = new Set(schema.required ?? []);
  const { policy } = action;
  const lines = [`## \`${action.name}\``, '', action.description, ''];
  const fields = Object.entries(schema.properties ?? {});
  if (fields.length > 0) {
    lines.push('| field | type | default | description |', '| --- | --- | --- | --- |');
    for (const [name, field] of fields) {
      const fallback =
        field.default !== undefined
          ? `\`${JSON.stringify(field.default)}\``
          : required.has(name)
            ? 'required'
            : '';
      lines.push(
        `| \`${name}\` | ${cell(typeOf(field))} | ${cell(fallback)} | ${cell(field.description ?? '')} |`,
      );
    }
  } else {
    lines.push('No inputs.');
  }
  const retry = policy.retry;
  lines.push(
    '',
    `Policy: timeout ${policy.timeout} (a step may ask for up to ${policy.maxTimeout})` +
      `${policy.heartbeatTimeout ? `, heartbeat ${policy.heartbeatTimeout}` : ''}; ` +
      `${retry.attempts} attempt${retry.attempts === 1 ? '' : 's'} (up to ${policy.maxAttempts}), first retry after ${retry.initialInterval}, ` +
      `backoff ×${retry.backoff}, at most ${retry.maxInterval} apart.` +
      (policy.nonRetryable?.length ? ` Also final: ${policy.nonRetryable.join(', ')}.` : ''),
    '',
    action.idempotent === true
      ? 'Idempotent: a step run twice with the same input ends as if run once.'
      : `Not idempotent: ${action.idempotent}. It runs once unless the step sets \`retry.attempts\`.`,
    '',
  );
  for (const example of action.examples) {
    lines.push(`${example.description}:`, '', '```yaml', example.yaml, '```', '');
  }
  return lines;
}

export function renderActionsDoc(actions: readonly ActionDefinition[]): string {
  const sorted = [...actions].sort((a, b) => a.name.localeCompare(b.name));
  return [
    '# Actions',
    '',
    '<!-- Generated from the action registry by `tunnel-lab actions --markdown > docs/actions.md`; do not edit. -->',
    '',
    'What a playbook step can `use`. Every step also takes `id`, `name`, `timeout`, `retry` ' +
      '(`attempts`, `interval`, `backoff`, `maxInterval`) and `continueOnError`. Errors whose class is ' +
      'final (a missing tool, a wrong lab file, an invalid manifest) fail a step at once, whatever its retries.',
    '',
    ...sorted.map((a) => `- [\`${a.name}\`](#${a.name.replace(/\./g, '')}): ${a.description}`),
    '',
    ...sorted.flatMap(section),
  ].join('\n');
}
