/**
 * How a step's command runs, wherever it is started from (the spawner process, or the calling process
 * itself): execa, argv only, its own process group, its output collected; never rejects on the
 * command's own failure.
 */
import { execa } from 'execa';

/** One command: everything it runs with. */
export interface CommandRequest {
  file: string;
  args: string[];
  /** The whole environment: nothing of the starting process's own is added. */
  env: Record<string, string>;
  cwd: string;
  input: string;
  timeoutMs?: number;
}

export interface CommandOutcome {
  exitCode: number | undefined;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  isCanceled: boolean;
  /** The program does not exist (ENOENT on spawn). */
  notFound: boolean;
}

export async function runWithExeca(
  request: CommandRequest,
  signal?: AbortSignal,
  onSpawned?: (pid: number) => void,
): Promise<CommandOutcome> {
  const subprocess = execa(request.file, request.args, {
    reject: false,
    cwd: request.cwd,
    env: request.env,
    extendEnv: false,
    input: request.input,
    ...(request.timeoutMs !== undefined ? { timeout: request.timeoutMs } : {}),
    ...(signal ? { cancelSignal: signal } : {}),
    stripFinalNewline: true,
    // Its own process group: a Ctrl-C typed at `tunnel-lab run` (which hosts the worker) reaches the CLI,
    // which cancels the run, and not the step's command behind the run's back.
    detached: true,
  });
  if (subprocess.pid !== undefined) onSpawned?.(subprocess.pid);
  const result = await subprocess;
  return {
    exitCode: result.exitCode,
    stdout: typeof result.stdout === 'string' ? result.stdout : '',
    stderr: typeof result.stderr === 'string' ? result.stderr : '',
    timedOut: result.timedOut,
    isCanceled: result.isCanceled,
    notFound: (result.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT',
  };
}
