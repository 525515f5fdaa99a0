import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { ApplicationFailure } from '@temporalio/activity';
import path from 'node:path';
import os from 'node:os';
import { toActivity } from '../activities/index.js';
import { execAction } from '../activities/exec.js';
import type { StepOutcome } from '../workflows/types.js';
import { root } from './support/temporal.js';

const activity = toActivity(execAction, { projectRoot: root, stateRoot: os.tmpdir() });
// Failures are what several tests expect: keep the SDK's log to real errors.
const env = new MockActivityEnvironment({ attempt: 2 }, { logger: new DefaultLogger('ERROR') });
const run = (input: unknown): Promise<StepOutcome> => env.run(activity, input);

describe('exec action', () => {
  it('runs argv without a shell and records exit code, output and attempt', async () => {
    const outcome = await run({ command: ['echo', '$(whoami) && ls'] });
    expect(outcome).toMatchObject({
      attempt: 2,
      output: { exitCode: 0, stdout: '$(whoami) && ls', stderr: '' },
    });
  });

  it('passes env, cwd and stdin', async () => {
    const outcome = await run({
      command: [
        'node',
        '-e',
        'process.stdin.pipe(process.stdout); console.error(process.env.X, process.cwd())',
      ],
      env: { X: 'from-env' },
      cwd: os.tmpdir(),
      stdin: 'from-stdin',
    });
    expect(outcome.output).toMatchObject({ stdout: 'from-stdin', stderr: `from-env ${os.tmpdir()}` });
  });

  it('fails a retryable ExpectationError when exit code or output do not match', async () => {
    const err = await run({
      command: ['sh', '-c', 'echo nope; exit 3'],
      expect: { exitCode: 0, stdout: '^yes' },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect(err).toMatchObject({ type: 'ExpectationError', nonRetryable: false, details: [{ attempt: 2 }] });
    expect((err as Error).message).toMatch(
      /exit code 3, expected 0; stdout does not match \/\^yes\/ \(output: nope\)/,
    );
  });

  it('accepts an expected non-zero exit code and stderr pattern', async () => {
    const outcome = await run({
      command: ['node', '-e', 'console.error("denied"); process.exit(7)'],
      expect: { exitCode: 7, stderr: 'den' },
    });
    expect(outcome.output).toMatchObject({ exitCode: 7 });
  });

  it('fails non-retryably when the program does not exist', async () => {
    const err = await run({ command: ['no-such-program-xyz'] }).catch((e: unknown) => e);
    expect(err).toMatchObject({ type: 'CommandNotFoundError', nonRetryable: true });
    expect((err as Error).message).toMatch(/command not found: no-such-program-xyz/);
  });

  it('kills a command at its timeout', async () => {
    const err = await run({ command: ['sleep', '5'], timeout: '200ms' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ type: 'ExpectationError' });
    expect((err as Error).message).toMatch(/sleep timed out after 200ms/);
  });

  it('rejects invalid input non-retryably', async () => {
    const err = await run({ command: 'ls -l' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ type: 'InputError', nonRetryable: true });
  });

  it('keeps the fixtures it needs', () => {
    expect(path.isAbsolute(root)).toBe(true);
  });
});
