/**
 * The spawner process: runs the commands its parent sends (src/spawner/spawner.ts) as the parent itself
 * would (run-with-execa.ts), and answers with each one's pid and outcome. It ends when its parent goes:
 * the commands it started lead their own process groups and are left to the parent's orphan reaping, as
 * a dead worker's own children are.
 */
import type { FromSpawner, SpawnRequest, ToSpawner } from './protocol.js';
import { runWithExeca } from './run-with-execa.js';

const running = new Map<number, AbortController>();

function send(message: FromSpawner): void {
  process.send?.(message);
}

async function run(request: SpawnRequest): Promise<void> {
  const controller = new AbortController();
  running.set(request.id, controller);
  try {
    const result = await runWithExeca(request, controller.signal, (pid) =>
      send({ type: 'spawned', id: request.id, pid }),
    );
    send({ type: 'done', id: request.id, result });
  } catch (err) {
    send({ type: 'broken', id: request.id, message: err instanceof Error ? err.message : String(err) });
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
