/**
 * `tunnel-lab`: run playbooks, follow and resume runs, validate files. The commands, their options and help
 * come from src/cli/spec.ts; errors become messages and exit codes here only.
 */
import { appendFileSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { WorkflowNotFoundError } from '@temporalio/client';
import { settings } from '../config.js';
import { PlaybookError, TunnelLabError, UsageError } from '../errors.js';
import { unknownName } from '../suggest.js';
import { installCompactLogger } from '../worker/logging.js';
import {
  actionsCommand,
  cancelCommand,
  listCommand,
  reportCommand,
  resumeCommand,
  runCommand,
  schemaCommand,
  serverCommand,
  statusCommand,
  validateCommand,
  type Out,
} from './commands.js';
import { withCodeFrames } from './frame.js';
import { stackCommand } from './stack-command.js';
import { COMMANDS, commandHelp, findCommand, globalHelp } from './spec.js';

type Command = (argv: string[], out: Out, err: Out) => Promise<number> | number;

const handlers: Record<string, Command> = {
  run: runCommand,
  status: statusCommand,
  list: listCommand,
  resume: resumeCommand,
  cancel: cancelCommand,
  report: reportCommand,
  validate: validateCommand,
  actions: actionsCommand,
  schema: schemaCommand,
  server: serverCommand,
  stack: stackCommand,
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
  // The in-process worker's own log goes to a file; the terminal shows the run's progress.
  const logFile = path.join(settings().stateRoot, 'worker.log');
  mkdirSync(path.dirname(logFile), { recursive: true });
  installCompactLogger((line) => appendFileSync(logFile, `${line}\n`), { handleSignals: false });
  return handler(rest, out, err);
}

function unknownCommand(name: string): string {
  return unknownName(
    'command',
    name,
    COMMANDS.map((c) => c.name),
  );
}

/** The message and exit code of anything a command throws; a stack trace only with --debug. */
function explain(error: unknown, debug: boolean): { message: string; code: number } {
  if (error instanceof UsageError) {
    return { message: [error.message, error.usage].filter(Boolean).join('\n'), code: error.exitStatus };
  }
  if (error instanceof WorkflowNotFoundError) {
    const id = error.workflowId ?? '';
    return { message: `no run "${id}" (tunnel-lab list shows the recent ones)`, code: 2 };
  }
  if (error instanceof PlaybookError) return { message: withCodeFrames(error), code: error.exitStatus };
  if (error instanceof TunnelLabError) {
    return { message: debug ? (error.stack ?? error.message) : error.message, code: error.exitStatus };
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
  (error: unknown) => {
    const { message, code } = explain(error, debug);
    if (message) err(message);
    process.exit(code);
  },
);
