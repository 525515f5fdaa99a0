/**
 * The `tunnel-lab` commands that only read playbooks and the actions: validate, actions and schema. They
 * load no part of Temporal's SDK, so they answer as fast as the playbooks load.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { actions } from '../../activities/registry.js';
import { settings, type Settings } from '../config.js';
import { PlaybookError, UsageError } from '../errors.js';
import { unknownName } from '../suggest.js';
import { loadPlaybookFile, resolvePlaybookPath } from '../playbook/load.js';
import { renderActionsDoc } from '../playbook/actions-doc.js';
import { playbookJsonSchema } from '../playbook/schema.js';
import { withCodeFrames } from './frame.js';
import { commandSpec, parseCommand, type Out } from './spec.js';

/** Where a playbook given by name is found. */
export const playbooksDir = (config: Settings) => path.join(config.projectRoot, 'playbooks');

export async function validateCommand(argv: string[], out: Out, err: Out): Promise<number> {
  const { positionals } = parseCommand(commandSpec('validate'), argv);
  const config = settings();
  let failed = 0;
  for (const ref of positionals) {
    const file = resolvePlaybookPath(ref, playbooksDir(config));
    try {
      const plan = await loadPlaybookFile(file, { playbooksDir: playbooksDir(config), actions });
      const count = plan.steps.reduce((n, node) => n + ('parallel' in node ? node.parallel.length : 1), 0);
      const cells = plan.matrix ? `, a matrix of ${plan.matrix.cells.length} cells` : '';
      out(`${file}: ok (${count} steps, ${plan.finally.length} finally${cells})`);
    } catch (e) {
      if (!(e instanceof PlaybookError)) throw e;
      failed += 1;
      err(withCodeFrames(e));
    }
  }
  return failed === 0 ? 0 : 1;
}

export function actionsCommand(argv: string[], out: Out): number {
  const { values, positionals } = parseCommand(commandSpec('actions'), argv);
  const name = positionals[0];
  const chosen = name ? actions.filter((a) => a.name === name) : actions;
  if (name && chosen.length === 0) {
    throw new UsageError(
      unknownName(
        'action',
        name,
        actions.map((a) => a.name),
      ),
    );
  }
  const described = chosen.map((a) => ({
    name: a.name,
    description: a.description,
    policy: a.policy,
    input: z.toJSONSchema(a.input, { io: 'input', unrepresentable: 'any' }),
    examples: a.examples,
  }));
  if (values.json) {
    out(JSON.stringify(name ? described[0] : described, null, 2));
    return 0;
  }
  if (values.markdown) {
    out(renderActionsDoc(chosen));
    return 0;
  }
  for (const a of described) {
    out(`${a.name} — ${a.description}`);
    out(
      `  timeout ${a.policy.timeout} (max ${a.policy.maxTimeout}), ${a.policy.retry.attempts} attempts (max ${a.policy.maxAttempts})`,
    );
    const props =
      (a.input as { properties?: Record<string, { description?: string; default?: unknown }> }).properties ??
      {};
    const required = new Set((a.input as { required?: string[] }).required ?? []);
    for (const [field, prop] of Object.entries(props)) {
      const fallback = name && prop.default !== undefined ? ` (default ${JSON.stringify(prop.default)})` : '';
      out(`  ${required.has(field) ? '*' : ' '} ${field}: ${prop.description ?? ''}${fallback}`);
    }
    if (name) {
      for (const example of a.examples) {
        out('');
        out(`  # ${example.description}`);
        for (const line of example.yaml.split('\n')) out(`  ${line}`);
      }
    }
    out('');
  }
  return 0;
}

export async function schemaCommand(argv: string[], out: Out): Promise<number> {
  const { values } = parseCommand(commandSpec('schema'), argv);
  const text = JSON.stringify(playbookJsonSchema(actions), null, 2) + '\n';
  if (values.write) {
    const file = path.join(playbooksDir(settings()), 'schema.json');
    await writeFile(file, text);
    out(`wrote ${file}`);
  } else {
    out(text.trimEnd());
  }
  return 0;
}
