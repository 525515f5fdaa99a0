import { z } from 'zod';
import { isDuration, toMs } from '../src/duration.js';
import { ExpectationError } from '../src/errors.js';
import { isRegex } from '../src/validation.js';
import { runCommand, type CommandOptions } from '../src/run-command.js';
import { defineAction } from './action.js';

const TAIL = 4096;

export const execInput = z
  .object({
    command: z
      .array(z.string())
      .min(1)
      .describe('Program and arguments, run directly (never through a shell).'),
    env: z.record(z.string(), z.string()).optional().describe('Extra environment variables.'),
    cwd: z.string().optional().describe('Working directory; the worker process directory by default.'),
    stdin: z.string().optional().describe('Text written to the standard input.'),
    timeout: z
      .string()
      .refine(isDuration, 'must be a duration such as 30s')
      .optional()
      .describe('Kill the command after this long (the attempt then fails).'),
    expect: z
      .object({
        exitCode: z.number().int().default(0).describe('Expected exit code.'),
        stdout: z
          .string()
          .refine(isRegex, 'is not a valid regular expression')
          .optional()
          .describe('Regular expression the standard output must match.'),
        stderr: z
          .string()
          .refine(isRegex, 'is not a valid regular expression')
          .optional()
          .describe('Regular expression the standard error must match.'),
      })
      .strict()
      .default({ exitCode: 0 })
      .describe(
        'What counts as success; a mismatch fails the attempt (tried again when the step sets retry.attempts).',
      ),
  })
  .strict();

export interface ExecOutput {
  exitCode: number;
  /** The last 4 KiB of the standard output, trimmed. */
  stdout: string;
  stderr: string;
  /** Wall time of the command itself. */
  durationMs: number;
}

/** Runs one local command as argv and checks its exit code and output. */
export const execAction = defineAction({
  name: 'exec',
  description: 'Run a local command (argv, no shell) and check its exit code and output.',
  input: execInput,
  policy: {
    timeout: '5m',
    maxTimeout: '2h',
    heartbeatTimeout: '10s',
    retry: { attempts: 1, initialInterval: '1s', backoff: 2, maxInterval: '30s' },
    maxAttempts: 20,
  },
  idempotent: 'it runs whatever command the step names, which may change something each time',
  drivesLab: false,
  expects: ({ expect }) =>
    [
      `exit code ${expect.exitCode}`,
      ...(expect.stdout !== undefined ? [`stdout matching /${expect.stdout}/`] : []),
      ...(expect.stderr !== undefined ? [`stderr matching /${expect.stderr}/`] : []),
    ].join(', '),
  summary: (input) => `exec ${input.command.join(' ')}`.slice(0, 200),
  evidence: (output: ExecOutput) => {
    const last = (output.stdout || output.stderr).split('\n').filter(Boolean).at(-1);
    return [`exit ${output.exitCode}${last ? `: ${last.slice(0, 200)}` : ''}`];
  },
  examples: [
    {
      description: 'Check that a tool is installed',
      yaml: 'id: kubectl-version\nuses: exec\nwith:\n  command: [kubectl, version, --client]\n  expect: { stdout: "Client Version" }',
    },
  ],
  changes: (input) => [`run ${input.command.join(' ')} on the worker's host`],
  create: () => async (input, ctx) => {
    const started = performance.now();
    const [file, ...args] = input.command as [string, ...string[]];
    const options: CommandOptions = { notFound: `command not found: ${file} (is it installed and on PATH?)` };
    if (input.env) options.env = input.env;
    if (input.cwd) options.cwd = input.cwd;
    if (input.stdin) options.input = input.stdin;
    if (input.timeout) options.timeoutMs = toMs(input.timeout);
    const result = await runCommand(ctx, file, args, options);
    const output: ExecOutput = {
      exitCode: result.exitCode,
      stdout: tail(result.stdout),
      stderr: tail(result.stderr),
      durationMs: Math.round(performance.now() - started),
    };
    if (result.timedOut) {
      throw new ExpectationError(`${file} timed out after ${input.timeout}`);
    }
    checkExpectations(input.expect, output);
    return output;
  },
});

function checkExpectations(expect: z.output<typeof execInput>['expect'], out: ExecOutput): void {
  const problems: string[] = [];
  if (out.exitCode !== expect.exitCode)
    problems.push(`exit code ${out.exitCode}, expected ${expect.exitCode}`);
  if (expect.stdout !== undefined && !new RegExp(expect.stdout, 'm').test(out.stdout)) {
    problems.push(`stdout does not match /${expect.stdout}/`);
  }
  if (expect.stderr !== undefined && !new RegExp(expect.stderr, 'm').test(out.stderr)) {
    problems.push(`stderr does not match /${expect.stderr}/`);
  }
  if (problems.length > 0) {
    const detail = out.stderr || out.stdout;
    throw new ExpectationError(problems.join('; ') + (detail ? ` (output: ${detail.slice(-300)})` : ''));
  }
}

function tail(text: string | undefined): string {
  const trimmed = (text ?? '').trim();
  return trimmed.length > TAIL ? trimmed.slice(-TAIL) : trimmed;
}
