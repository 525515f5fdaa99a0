/**
 * The command line a stand-in tool answers: its arguments, environment, working folder, stdin, and where
 * its output goes. A stand-in runs either as its own process (`runAsProcess`: process.argv, process.env,
 * the process's stdio and exit code) or inside the lab's stand-in host (sim/host.ts), which answers many
 * calls in one long-lived process (`runCall`: the caller's argv, env and folder, output collected and sent
 * back). Stand-in code reads and writes through `toolCall()`, `out()`, `err()` and ends with `exit()` or
 * `abort()` (sim/lib/exit.ts), never through `process` directly, so that both ways behave the same.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { CliExit } from './exit.js';

export interface ToolCall {
  /** The arguments after the program name. */
  argv: string[];
  env: NodeJS.ProcessEnv;
  /** The caller's working folder: relative paths in arguments are relative to it. */
  cwd: string;
  /**
   * When the command began (epoch ms): the process's start, or when the host took the call. A simulated
   * command's latency counts from here, so that its own start-up is part of how long it takes.
   */
  startedAt: number;
  stdout(text: string): void;
  stderr(text: string): void;
  /** The whole of stdin (the host never serves a call that reads it, see sim/lib/standin-client.sh). */
  stdin(): string;
  /** Aborted when the caller is gone (the host's client disconnected): waits end early. */
  signal: AbortSignal;
  /** The tool's command (`get`, `install`...), once the tool parsed its arguments: what the host logs. */
  command?: string;
}

/** A stand-in tool's command: ends normally for exit code 0, or by throwing CliExit. */
export type ToolMain = () => Promise<void>;

const calls = new AsyncLocalStorage<ToolCall>();

const processCall: ToolCall = {
  get argv() {
    return process.argv.slice(2);
  },
  get env() {
    return process.env;
  },
  get cwd() {
    return process.cwd();
  },
  startedAt: performance.timeOrigin,
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  stdin: () => readFileSync(0, 'utf8'),
  signal: new AbortController().signal,
};

/** The call being answered: the host's current one, else this process's own command line. */
export function toolCall(): ToolCall {
  return calls.getStore() ?? processCall;
}

export function out(text: string): void {
  toolCall().stdout(text);
}

export function err(text: string): void {
  toolCall().stderr(text);
}

/** Ends the command with this exit code (what it printed stays printed). */
export function exit(code: number): never {
  throw new CliExit('', code);
}

/** Names the call's command once the tool parsed its arguments. */
export function setCommand(name: string): void {
  toolCall().command = name;
}

/** A path argument as the caller meant it: relative to the caller's working folder. */
export function callerPath(file: string): string {
  return path.resolve(toolCall().cwd, file);
}

/** What one call ended with. */
export interface CallResult {
  code: number;
  stdout: string;
  stderr: string;
  /** What the tool named its command (see `ToolCall.command`). */
  command?: string;
}

/**
 * Runs `main` for one call and collects what it printed. `errorPrefix` is how the tool words an
 * unexpected error (`error: ` for kubectl, `Error: ` for istioctl).
 */
export async function runCall(
  main: ToolMain,
  call: Omit<ToolCall, 'stdout' | 'stderr'>,
  errorPrefix: string,
): Promise<CallResult> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const store: ToolCall = {
    ...call,
    stdout: (text) => stdout.push(text),
    stderr: (text) => stderr.push(text),
  };
  const code = await calls.run(store, () => ended(main, errorPrefix));
  return { code, stdout: stdout.join(''), stderr: stderr.join(''), command: store.command };
}

/** Runs `main` as this process's command and exits with its code. */
export function runAsProcess(main: ToolMain, errorPrefix: string): void {
  void ended(main, errorPrefix).then((code) => process.exit(code));
}

/** Runs `main` to its end; prints the message of a CliExit or unexpected error; returns the exit code. */
async function ended(main: ToolMain, errorPrefix: string): Promise<number> {
  try {
    await main();
    return 0;
  } catch (thrown) {
    const { message, code } =
      thrown instanceof CliExit
        ? thrown
        : { message: `${errorPrefix}${thrown instanceof Error ? thrown.message : String(thrown)}`, code: 1 };
    if (message) err(message.endsWith('\n') ? message : `${message}\n`);
    return code;
  }
}
