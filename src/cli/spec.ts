/**
 * The `tunnel-lab` commands as data: their arguments, options, examples and exit codes. The parser, each
 * command's `--help` and the global usage all come from this one table, so they cannot disagree.
 */
import { parseArgs } from 'node:util';
import { UsageError } from '../errors.js';

/** Where a command writes its lines. */
export type Out = (line: string) => void;

export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  /** The value's placeholder in help, e.g. `NAME`. */
  value?: string;
  description: string;
}

export interface CommandSpec {
  name: string;
  /** Positional arguments as usage shows them, e.g. `RUN_ID DIR`. */
  args: string;
  /** How many positionals it takes (max `Infinity` for FILE...). */
  positionals: { min: number; max: number };
  summary: string;
  /** More text for `--help`, after the usage line. */
  details?: string;
  options: Record<string, OptionSpec>;
  examples: string[];
}

/** What every command's exit code means. */
export const EXIT_CODES: [number, string][] = [
  [0, 'success (for run and resume: the run passed)'],
  [1, 'the run failed or was cancelled, or a check failed'],
  [2, 'usage error: unknown command or option, bad argument, invalid playbook, unknown name'],
  [
    3,
    'no Temporal server answers (TEMPORAL_ADDRESS), or the embedded one or the stack cannot start (stack status: a part is stopped); a followed run waits 120 s for a server that stops answering first',
  ],
  [130, 'interrupted by Ctrl-C (the run was cancelled, or left running after a second Ctrl-C)'],
];

const worker: Record<string, OptionSpec> = {
  detach: {
    type: 'boolean',
    short: 'd',
    description: 'start or answer the run and return at once, without following it',
  },
  'no-worker': {
    type: 'boolean',
    description: 'rely on workers elsewhere instead of running one in this process',
  },
  report: {
    type: 'string',
    value: 'DIR',
    description: 'write junit.xml and report.html of the run into DIR',
  },
};

export const COMMANDS: CommandSpec[] = [
  {
    name: 'run',
    args: 'PLAYBOOK',
    positionals: { min: 1, max: 1 },
    summary: 'run a playbook (a name in playbooks/ or a file) and follow it',
    details:
      'The run is a durable Temporal workflow: it survives this command, and `tunnel-lab resume RUN_ID`\n' +
      'follows it again. Ctrl-C cancels it (its finally steps still run); a second Ctrl-C leaves it.',
    options: {
      var: {
        type: 'string',
        short: 'v',
        multiple: true,
        value: 'NAME=VALUE',
        description: 'set a playbook variable (repeatable)',
      },
      lab: {
        type: 'string',
        value: 'NAME',
        description: "the lab definition (labs/NAME.yaml or a file); overrides the playbook's",
      },
      'lab-host': {
        type: 'string',
        value: 'HOST',
        description: 'run the lab steps on the worker of that lab host',
      },
      'pause-on-failure': {
        type: 'boolean',
        description: 'wait for `resume` when a step fails after its retries',
      },
      'dry-run': {
        type: 'boolean',
        description: 'print what the run would create and change on its lab, step by step, and stop',
      },
      id: { type: 'string', value: 'ID', description: 'the run id (default: <playbook>-<time>-<random>)' },
      ...worker,
    },
    examples: [
      'tunnel-lab run tls-passthrough --lab sim',
      'tunnel-lab run tls-passthrough --lab mine --dry-run',
      'tunnel-lab run mtls --var teardown=halt --report out/',
      'tunnel-lab run tls-passthrough --pause-on-failure',
    ],
  },
  {
    name: 'status',
    args: 'RUN_ID',
    positionals: { min: 1, max: 1 },
    summary: 'progress of a run, running or finished',
    options: { json: { type: 'boolean', description: 'print the progress as JSON' } },
    examples: ['tunnel-lab status tls-passthrough-20261201-184516-tgnk'],
  },
  {
    name: 'list',
    args: '',
    positionals: { min: 0, max: 0 },
    summary: 'recent runs',
    options: { limit: { type: 'string', value: 'N', description: 'how many runs to show (default 20)' } },
    examples: ['tunnel-lab list --limit 5'],
  },
  {
    name: 'resume',
    args: 'RUN_ID',
    positionals: { min: 1, max: 1 },
    summary: 'answer a paused run, or follow a run again after a crash',
    options: {
      retry: { type: 'boolean', description: 'run the failed step again' },
      skip: { type: 'boolean', description: 'mark the failed step skipped and go on' },
      abort: { type: 'boolean', description: 'fail the run (its finally steps still run)' },
      ...worker,
    },
    examples: ['tunnel-lab resume tls-passthrough-20261201-184516-tgnk --retry'],
  },
  {
    name: 'cancel',
    args: 'RUN_ID',
    positionals: { min: 1, max: 1 },
    summary: 'cancel a running run (its finally steps still run)',
    options: {},
    examples: ['tunnel-lab cancel tls-passthrough-20261201-184516-tgnk'],
  },
  {
    name: 'report',
    args: 'RUN_ID DIR',
    positionals: { min: 2, max: 2 },
    summary: 'junit.xml and report.html of a run, from its history',
    options: {},
    examples: ['tunnel-lab report tls-passthrough-20261201-184516-tgnk out/'],
  },
  {
    name: 'validate',
    args: 'PLAYBOOK...',
    positionals: { min: 1, max: Infinity },
    summary: 'check playbooks without running them',
    details: 'Every problem is reported as file:line:column: field: message; exit 1 when there is one.',
    options: {},
    examples: ['tunnel-lab validate playbooks/*.yaml'],
  },
  {
    name: 'actions',
    args: '[ACTION]',
    positionals: { min: 0, max: 1 },
    summary: 'the actions playbooks can use, or one of them in full',
    options: {
      json: { type: 'boolean', description: 'print them as JSON (inputs as JSON Schema)' },
      markdown: { type: 'boolean', description: 'print the reference docs/actions.md is made of' },
    },
    examples: [
      'tunnel-lab actions',
      'tunnel-lab actions probe.curl',
      'tunnel-lab actions --markdown > docs/actions.md',
    ],
  },
  {
    name: 'schema',
    args: '',
    positionals: { min: 0, max: 0 },
    summary: 'the playbook JSON Schema',
    options: { write: { type: 'boolean', description: 'write it to playbooks/schema.json' } },
    examples: ['tunnel-lab schema --write'],
  },
  {
    name: 'server',
    args: '',
    positionals: { min: 0, max: 0 },
    summary: 'the embedded Temporal dev server, its Web UI and a worker, until Ctrl-C',
    details:
      'The Web UI that `run` prints lives only as long as the command that started the embedded server;\n' +
      'keep `tunnel-lab server` running in another terminal for one that stays.',
    options: {},
    examples: ['tunnel-lab server'],
  },
  {
    name: 'stack',
    args: 'up|down|status',
    positionals: { min: 1, max: 1 },
    summary: "docker-compose.yml's production stack without Docker: PostgreSQL, server, Web UI, worker",
    details:
      'Runs the services of docker-compose.yml natively, from its versions, environment and scripts: the\n' +
      'server, SQL tool and Web UI are built once from their Go modules (minutes), PostgreSQL comes from npm.\n' +
      '`up` starts what is not running and waits until it is ready; `down` stops it all (data kept unless\n' +
      '--purge); logs are in .state/stack/logs/. Point the CLI at it with TEMPORAL_ADDRESS and TEMPORAL_UI_URL.',
    options: {
      port: { type: 'string', value: 'PORT', description: "the server's frontend port (default 7233)" },
      'ui-port': { type: 'string', value: 'PORT', description: "the Web UI's port (default 8080)" },
      'postgres-port': { type: 'string', value: 'PORT', description: "PostgreSQL's port (default 5432)" },
      purge: { type: 'boolean', description: "with down: remove PostgreSQL's data too" },
    },
    examples: [
      'tunnel-lab stack up',
      'TEMPORAL_ADDRESS=127.0.0.1:7233 TEMPORAL_UI_URL=http://127.0.0.1:8080 tunnel-lab run hello --no-worker',
      'tunnel-lab stack down',
    ],
  },
];

export function findCommand(name: string): CommandSpec | undefined {
  return COMMANDS.find((c) => c.name === name);
}

/** The spec of a command this table has (a command's own module asks for its own). */
export function commandSpec(name: string): CommandSpec {
  const found = findCommand(name);
  if (!found) throw new Error(`no command spec "${name}"`);
  return found;
}

function usageLine(spec: CommandSpec): string {
  const options = Object.entries(spec.options).map(([name, o]) => {
    const flag = `--${name}${o.value ? ` ${o.value}` : ''}`;
    return `[${flag}]${o.multiple ? '...' : ''}`;
  });
  return ['tunnel-lab', spec.name, spec.args, ...options].filter(Boolean).join(' ');
}

const ENVIRONMENT = `environment:
  TEMPORAL_ADDRESS     Temporal frontend (default 127.0.0.1:7233; when unset and none answers, an embedded
                       dev server starts)
  TEMPORAL_NAMESPACE   default
  TEMPORAL_TASK_QUEUE  tunnel-lab
  TEMPORAL_UI_URL      the Web UI to link runs to when TEMPORAL_ADDRESS names your own server
  TUNNEL_LAB_STATE     where runs keep their files (default .state)`;

function exitCodes(): string {
  return [
    'exit codes:',
    ...EXIT_CODES.map(([code, meaning]) => `  ${String(code).padEnd(4)} ${meaning}`),
  ].join('\n');
}

/** `tunnel-lab COMMAND --help`. */
export function commandHelp(spec: CommandSpec): string {
  const width = Math.max(
    12,
    ...Object.entries(spec.options).map(([n, o]) => `--${n}${o.value ? ` ${o.value}` : ''}`.length + 4),
  );
  const options = Object.entries(spec.options).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : '    '}--${name}${o.value ? ` ${o.value}` : ''}`;
    return `  ${flag.padEnd(width + 4)} ${o.description}`;
  });
  options.push(`  ${'-h, --help'.padEnd(width + 4)} this help`);
  return [
    `${spec.summary}`,
    '',
    `usage: ${usageLine(spec)}`,
    ...(spec.details ? ['', spec.details] : []),
    '',
    'options:',
    ...options,
    '',
    'examples:',
    ...spec.examples.map((e) => `  ${e}`),
    '',
    exitCodes(),
  ].join('\n');
}

/** `tunnel-lab --help`. */
export function globalHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => `${c.name} ${c.args}`.length));
  return [
    'tunnel-lab — run lab playbooks as durable Temporal workflows',
    '',
    'usage: tunnel-lab COMMAND [ARGS] [OPTIONS]      (tunnel-lab COMMAND --help for its options)',
    '',
    'commands:',
    ...COMMANDS.map((c) => `  ${`${c.name} ${c.args}`.padEnd(width)}  ${c.summary}`),
    '',
    'global options:',
    '  --version   the version of tunnel-lab',
    '  --debug     show stack traces of errors',
    '',
    ENVIRONMENT,
    '',
    exitCodes(),
  ].join('\n');
}

type Values = Record<string, string | boolean | string[] | undefined>;

/** Parses a command's arguments by its spec; a mistake becomes a UsageError that points at `--help`. */
export function parseCommand(spec: CommandSpec, argv: string[]): { values: Values; positionals: string[] } {
  const options = Object.fromEntries(
    Object.entries(spec.options).map(([name, o]) => [
      name,
      { type: o.type, ...(o.short ? { short: o.short } : {}), ...(o.multiple ? { multiple: true } : {}) },
    ]),
  );
  let parsed: { values: Values; positionals: string[] };
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true }) as typeof parsed;
  } catch (err) {
    throw new UsageError(plainParseError(err), usageHint(spec));
  }
  const count = parsed.positionals.length;
  if (count < spec.positionals.min) {
    throw new UsageError(`missing ${spec.args.split(' ')[count] ?? 'argument'}`, usageHint(spec));
  }
  if (count > spec.positionals.max) {
    throw new UsageError(
      `unexpected argument ${JSON.stringify(parsed.positionals[spec.positionals.max])}`,
      usageHint(spec),
    );
  }
  return parsed;
}

/** Node's parseArgs messages, without their hints that name Node's own API. */
function plainParseError(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const unknown = /^Unknown option '([^']+)'/.exec(message);
  if (unknown) return `unknown option ${unknown[1]}`;
  const missing = /^Option '(?:-\w, )?(--[\w-]+)(?: <value>)?' argument missing/.exec(message);
  if (missing) return `${missing[1]} needs a value`;
  const noValue = /^Option '(?:-\w, )?(--[\w-]+)' does not take an argument/.exec(message);
  if (noValue) return `${noValue[1]} takes no value`;
  return message.split('\n')[0]!;
}

/** `usage: ...` and where to read more; what a UsageError prints under its message. */
export function usageHint(spec: CommandSpec): string {
  return `usage: ${usageLine(spec)}\n(tunnel-lab ${spec.name} --help for more)`;
}
