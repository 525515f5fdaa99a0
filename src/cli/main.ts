/** `tunnel-lab`: run playbooks, follow and resume runs, validate files. Errors become exit codes here only. */
import { appendFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { settings } from '../config.js';
import { installCompactLogger } from '../worker/logging.js';
import { ExitError, PlaybookError, TemporalCliError } from '../errors.js';
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
} from './commands.js';

const HELP = `tunnel-lab — run lab playbooks as durable Temporal workflows

usage:
  tunnel-lab run PLAYBOOK [--var k=v]... [--lab NAME] [--lab-host HOST] [--pause-on-failure] [--id ID]
                                  [--detach] [--no-worker]
  tunnel-lab status RUN_ID [--json]      progress of a run, running or finished
  tunnel-lab list [--limit N]            recent runs
  tunnel-lab resume RUN_ID [--retry|--skip|--abort] [--detach] [--no-worker]
                                          answer a paused run (or just follow a run after a crash)

run, resume and cancel run a worker in their own process while they follow the run (--no-worker: rely
on workers elsewhere; --detach: start or answer the run and return at once).
  tunnel-lab cancel RUN_ID               cancel a run (its finally steps still run)
  tunnel-lab report RUN_ID DIR           junit.xml and report.html of a run, from its history
                                          (run and resume write them too with --report DIR)
  tunnel-lab validate FILE...            check playbooks; exit 1 on any error
  tunnel-lab actions [--json]            the actions playbooks can use
  tunnel-lab schema [--write]            the playbook JSON Schema (--write: playbooks/schema.json)
  tunnel-lab server                      embedded dev server, Web UI and a worker, until Ctrl-C

environment: TEMPORAL_ADDRESS (default 127.0.0.1:7233; unset = embedded dev server when none answers),
  TEMPORAL_NAMESPACE (default), TEMPORAL_TASK_QUEUE (tunnel-lab), TUNNEL_LAB_STATE (.state)`;

// The in-process worker's own log goes to a file; the terminal shows the run's progress.
const logFile = path.join(settings().stateRoot, 'worker.log');
mkdirSync(path.dirname(logFile), { recursive: true });
installCompactLogger((line) => appendFileSync(logFile, `${line}\n`), { handleSignals: false });

const out = (line: string) => console.log(line);
const err = (line: string) => console.error(line);

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'run':
      return runCommand(rest, out);
    case 'status':
      return statusCommand(rest, out);
    case 'list':
      return listCommand(rest, out);
    case 'resume':
      return resumeCommand(rest, out);
    case 'cancel':
      return cancelCommand(rest, out);
    case 'report':
      return reportCommand(rest, out);
    case 'validate':
      return validateCommand(rest, out, err);
    case 'actions':
      return actionsCommand(rest, out);
    case 'schema':
      return schemaCommand(rest, out);
    case 'server':
      return serverCommand(rest, out);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      out(HELP);
      return command === undefined ? 2 : 0;
    default:
      err(`unknown command "${command}"\n\n${HELP}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof ExitError) {
      if (error.message) err(error.message);
      process.exit(error.exitCode);
    }
    if (error instanceof PlaybookError) {
      err(error.message);
      process.exit(2);
    }
    if (error instanceof TemporalCliError) {
      err(error.message);
      process.exit(3);
    }
    if (error instanceof Error && (error as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      err(`${error.message}\n\n${HELP}`);
      process.exit(2);
    }
    err(`tunnel-lab: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exit(1);
  },
);
