/**
 * `tunnel-lab`: run playbooks, follow and resume runs, validate files. The commands, their options and help
 * come from src/cli/spec.ts; errors become messages and exit codes here only.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { settings } from '../config.js';
import { PlaybookError, TunnelLabError, UsageError } from '../errors.js';
import { unknownName } from '../suggest.js';
import { withCodeFrames } from './frame.js';
import { COMMANDS, commandHelp, findCommand, globalHelp, type Out } from './spec.js';

type Command = (argv: string[], out: Out, err: Out) => Promise<number> | number;

/**
 * Each command's module, loaded when the command runs: help, `--version` and the playbook commands never
 * load Temporal's SDK (most of a second of a CLI start here), and a run loads its worker's part only when
 * it runs a worker (session.ts).
 */
const handlers: Record<string, () => Promise<Command>> = {
  run: async () => (await import('./commands.js')).runCommand,
  status: async () => (await import('./commands.js')).statusCommand,
  list: async () => (await import('./commands.js')).listCommand,
  resume: async () => (await import('./commands.js')).resumeCommand,
  cancel: async () => (await import('./commands.js')).cancelCommand,
  report: async () => (await import('./commands.js')).reportCommand,
  server: async () => (await import('./commands.js')).serverCommand,
  validate: async () => (await import('./playbook-commands.js')).validateCommand,
  actions: async () => (await import('./playbook-commands.js')).actionsCommand,
  schema: async () => (await import('./playbook-commands.js')).schemaCommand,
  stack: async () => (await import('./stack-command.js')).stackCommand,
};

const out: Out = (line) => console.log(line);

// Output piped into a reader that stops early (`| head`): the rest is not wanted, which is no error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') throw err;
  process.exit(0);
});
const err: Out = (line) => console.error(line);

function version(): string {
  const file = path.join(settings().projectRoot, 'package.json');
  return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined) {
    err(globalHelp());
    return 2;
  }
  if (command === '--help' || command === '-h' || command === 'help') {
    const about = rest[0] === undefined ? undefined : findCommand(rest[0]);
    if (rest[0] !== undefined && !about) throw new UsageError(unknownCommand(rest[0]));
    out(about ? commandHelp(about) : globalHelp());
    return 0;
  }
  if (command === '--version' || command === '-V' || command === 'version') {
    out(`tunnel-lab ${version()}`);
    return 0;
  }
  const spec = findCommand(command);
  const handler = handlers[command];
  if (!spec || !handler)
    throw new UsageError(unknownCommand(command), 'tunnel-lab --help lists the commands');
  // Help has no side effects: it is answered before anything is parsed, started or built.
  if (rest.includes('--help') || rest.includes('-h')) {
    out(commandHelp(spec));
    return 0;
  }
  return (await handler())(rest, out, err);
}

function unknownCommand(name: string): string {
  return unknownName(
    'command',
    name,
    COMMANDS.map((c) => c.name),
  );
}

/** The message and exit code of anything a command throws; a stack trace only with --debug. */
async function explain(error: unknown, debug: boolean): Promise<{ message: string; code: number }> {
  if (error instanceof UsageError) {
    return { message: [error.message, error.usage].filter(Boolean).join('\n'), code: error.exitStatus };
  }
  if (error instanceof PlaybookError) return { message: withCodeFrames(error), code: error.exitStatus };
  if (error instanceof TunnelLabError) {
    return { message: debug ? (error.stack ?? error.message) : error.message, code: error.exitStatus };
  }
  // Only a command that asked Temporal fails this way: the client is loaded for the check, not at start.
  const client = await import('@temporalio/client').catch(() => undefined);
  if (client && error instanceof client.WorkflowNotFoundError) {
    const id = error.workflowId ?? '';
    return { message: `no run "${id}" (tunnel-lab list shows the recent ones)`, code: 2 };
  }
  const text = error instanceof Error ? error.message : String(error);
  return {
    message: `tunnel-lab: ${debug && error instanceof Error ? (error.stack ?? text) : `${text} (--debug shows where)`}`,
    code: 1,
  };
}

const argv = process.argv.slice(2);
const debug = argv.includes('--debug') || process.env.TUNNEL_LAB_DEBUG === '1';
main(argv.filter((arg) => arg !== '--debug')).then(
  (code) => process.exit(code),
  async (error: unknown) => {
    const { message, code } = await explain(error, debug);
    if (message) err(message);
    process.exit(code);
  },
);
