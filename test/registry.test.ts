import { readFile } from 'node:fs/promises';
import path from 'node:path';
import os from 'node:os';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { defineAction } from '../activities/action.js';
import { actions, definitionProblems } from '../activities/registry.js';
import { loadLab } from '../src/lab/definition.js';
import { renderActionsDoc } from '../src/playbook/actions-doc.js';
import { parsePlaybook } from '../src/playbook/load.js';
import { root } from './support/temporal.js';

const sleep = defineAction({
  name: 'sleep.wait',
  description: 'Wait.',
  input: z.object({}).strict(),
  policy: {
    timeout: '1m',
    maxTimeout: '10m',
    retry: { attempts: 1, initialInterval: '1s', backoff: 2, maxInterval: '1s' },
    maxAttempts: 3,
  },
  idempotent: true,
  changes: () => [],
  summary: () => 'sleep',
  examples: [{ description: 'Wait', yaml: 'id: nap\nuses: sleep.wait' }],
  create: () => () => Promise.resolve({}),
});

describe('the action registry', () => {
  it('accepts a sound definition', () => {
    expect(definitionProblems(sleep)).toEqual([]);
  });

  it('refuses inconsistent policies, unknown or redundant non-retryable names, and no examples', () => {
    const broken = {
      ...sleep,
      policy: {
        ...sleep.policy,
        timeout: '20m',
        heartbeatTimeout: '30m',
        retry: { ...sleep.policy.retry, attempts: 5 },
        nonRetryable: ['LabConfigEror', 'LabConfigError', 'LabToolError'],
      },
      examples: [],
    };
    expect(definitionProblems(broken)).toEqual([
      'action sleep.wait: its timeout 20m exceeds its maxTimeout 10m',
      'action sleep.wait: its retry.attempts 5 is not within 1..maxAttempts (3)',
      'action sleep.wait: its heartbeatTimeout 30m exceeds its timeout 20m',
      'action sleep.wait: nonRetryable names LabConfigEror, which is no error class of src/errors.ts',
      'action sleep.wait: nonRetryable names LabConfigError, which is non-retryable by its class already',
      'action sleep.wait: it has no example',
    ]);
  });

  it('refuses an action that is not idempotent but retries by default, or says nothing of why', () => {
    const retrying = {
      ...sleep,
      idempotent: 'it appends to a file',
      policy: { ...sleep.policy, retry: { ...sleep.policy.retry, attempts: 2 } },
    };
    expect(definitionProblems(retrying)).toEqual([
      'action sleep.wait: it is not idempotent, so a step must ask for retries: its retry.attempts must be 1, not 2',
    ]);
    expect(definitionProblems({ ...sleep, idempotent: ' ' })).toEqual([
      'action sleep.wait: idempotent must be true or say why the action is not',
    ]);
    expect(definitionProblems({ ...sleep, idempotent: 'it appends to a file' })).toEqual([]);
  });
});

describe('which runs drive the lab (and so hold its lease)', () => {
  const plan = (uses: string[]) =>
    parsePlaybook(
      `name: p\nsteps:\n${uses.map((u, i) => `  - { id: s${i}, uses: ${u}${u === 'exec' ? ", with: { command: ['true'] }" : ''} }`).join('\n')}\n`,
      'p.yaml',
      { playbooksDir: path.join(root, 'playbooks'), actions },
    );

  it('is every run with a step whose action does not say `drivesLab: false`', () => {
    expect(plan(['exec', 'exec']).usesLab).toBe(false);
    expect(plan(['exec', 'tools.check']).usesLab).toBe(true);
  });

  it('takes an action at its word: one that says `drivesLab: false` never asks for the lab', async () => {
    const free = actions.filter((a) => a.drivesLab === false).map((a) => a.name);
    expect(free).toEqual(['exec']);
    for (const name of free) {
      const source = await readFile(path.join(root, 'activities', `${name.replace(/\./g, '-')}.ts`), 'utf8');
      expect(source).not.toMatch(/\.lab\(\)/);
    }
  });
});

describe('what each action says it changes', () => {
  it('answers for every example, on a Vagrant lab and on an existing cluster, where there is nothing to boot', async () => {
    const labs = {
      vagrant: await loadLab('sim', { projectRoot: root, stateDir: os.tmpdir() }),
      existing: await loadLab('existing.example', { projectRoot: root, stateDir: os.tmpdir() }),
    };
    const said: Record<string, string[]> = {};
    for (const action of actions) {
      for (const [i, example] of action.examples.entries()) {
        const step = parseYaml(example.yaml) as { with?: unknown };
        // An example that reads the playbook's vars has no input of its own to list.
        if (JSON.stringify(step.with ?? {}).includes('${{')) continue;
        const input = action.input.parse(step.with ?? {});
        for (const [kind, lab] of Object.entries(labs)) {
          const changes = await action.changes(input, { projectRoot: root, lab });
          expect(changes.every((c) => typeof c === 'string' && c.length > 0)).toBe(true);
          said[`${action.name}#${i} ${kind}`] = changes;
        }
      }
    }
    expect(said['vm.up#0 vagrant']).toEqual([
      'boot (vagrant up) and provision every machine of lab sim, unless running and provisioned',
    ]);
    expect(said['vm.up#0 existing']).toEqual([]);
    expect(said['istio.install#0 existing']).toEqual([]);
    expect(said['manifest.apply#1 vagrant']).toEqual([
      'apply ServiceEntry default/www.google.com',
      'apply ServiceEntry default/www.wikipedia.org',
      'apply DestinationRule default/egressgateway-tls-passthrough',
      'apply VirtualService default/egress-www.google.com',
      'apply VirtualService default/egress-www.wikipedia.org',
      'apply EnvoyFilter istio-system/egress-tcp-tunnel',
    ]);
    expect(said['log.expect#0 vagrant']).toEqual([]);
  });
});

describe('docs/actions.md', () => {
  it('is the reference the registry generates (regenerate: npm run schema)', async () => {
    const shipped = await readFile(path.join(root, 'docs', 'actions.md'), 'utf8');
    expect(shipped).toBe(`${renderActionsDoc(actions)}\n`);
  });
});

describe("every action's examples", () => {
  const cases = actions.flatMap((action) =>
    action.examples.map((example) => [action.name, example.description, example.yaml] as const),
  );

  it.each(cases)('%s: "%s" is a valid step', (name, _description, yaml) => {
    const step = yaml
      .split('\n')
      .map((line, i) => (i === 0 ? `  - ${line}` : `    ${line}`))
      .join('\n');
    const text = `name: example\nvars: { teardown: keep }\nsteps:\n${step}\n`;
    const plan = parsePlaybook(text, `${name}.example.yaml`, {
      playbooksDir: path.join(root, 'playbooks'),
      actions,
    });
    expect(plan.steps).toEqual([expect.objectContaining({ uses: name })]);
  });
});
