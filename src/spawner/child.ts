/**
 * The spawner process: runs the commands its parent sends (src/spawner/spawner.ts) with execa, exactly
 * as run-command.ts would, and answers with each one's pid and result. It ends when its parent goes: the
 * commands it started lead their own process groups and are left to the parent's orphan reaping, as a
 * dead worker's own children are.
 */
import { execa } from 'execa';
import type { DoneReply, FromSpawner, SpawnRequest, SpawnResult, ToSpawner } from './protocol.js';

const running = new Map<number, AbortController>();

function send(message: FromSpawner): void {
  process.send?.(message);
}

async function run(request: SpawnRequest): Promise<void> {
  const controller = new AbortController();
  running.set(request.id, controller);
  try {
    const subprocess = execa(request.file, request.args, {
      reject: false,
      cwd: request.cwd,
      env: request.env,
      extendEnv: false,
      input: request.input,
      ...(request.timeoutMs !== undefined ? { timeout: request.timeoutMs } : {}),
      cancelSignal: controller.signal,
      stripFinalNewline: true,
      detached: true,
    });
    if (subprocess.pid !== undefined) send({ type: 'spawned', id: request.id, pid: subprocess.pid });
    const result = await subprocess;
    const code = (result.cause as NodeJS.ErrnoException | undefined)?.code;
    const reply: SpawnResult = {
      exitCode: result.exitCode,
      stdout: typeof result.stdout === 'string' ? result.stdout : '',
      stderr: typeof result.stderr === 'string' ? result.stderr : '',
      timedOut: result.timedOut,
      isCanceled: result.isCanceled,
      notFound: code === 'ENOENT',
      ...(result.failed && result.exitCode === undefined && !result.isCanceled
        ? { failure: result.shortMessage }
        : {}),
    };
    send({ type: 'done', id: request.id, result: reply } satisfies DoneReply);
  } catch (err) {
    send({
      type: 'done',
      id: request.id,
      result: {
        exitCode: undefined,
        stdout: '',
        stderr: '',
        timedOut: false,
        isCanceled: false,
        notFound: false,
        failure: err instanceof Error ? err.message : String(err),
      },
    });
  } finally {
    running.delete(request.id);
  }
}

process.on('message', (message: ToSpawner) => {
  if (message.type === 'run') void run(message);
  else if (message.type === 'cancel') running.get(message.id)?.abort();
});
// The parent is gone (it exited, or was killed): so is the reason to be.
process.on('disconnect', () => process.exit(0));
