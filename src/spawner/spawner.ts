/**
 * Starts commands from a small process of its own rather than from the worker.
 *
 * Node starts a child by fork and exec, and the fork copies the parent's page tables: the larger the
 * parent, the longer the call blocks its event loop. A worker (the Temporal core, its workflow thread,
 * the activities) is some 200 MB, and each spawn there stops everything else it serves for 6-9 ms; from
 * a process of 40 MB it takes about 1 ms. The spawner is that process (src/spawner/child.ts): the worker
 * sends it each command over an IPC channel, and it runs them with execa exactly as run-command.ts
 * would, reporting each one's pid (for the orphan records) and result.
 *
 * It starts on first use, restarts on the next use if it died (the commands it was running fail), and
 * keeps its parent alive only while a command runs.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../config.js';
import type { FromSpawner, ToSpawner } from './protocol.js';
import type { CommandOutcome, CommandRequest } from './run-with-execa.js';

export interface SpawnOptions extends CommandRequest {
  signal?: AbortSignal;
  /** Called once the command runs, with its pid. */
  onSpawned?: (pid: number) => void;
}

interface Pending {
  resolve(result: CommandOutcome): void;
  reject(error: Error): void;
  onSpawned?: (pid: number) => void;
}

export class Spawner {
  private child: ChildProcess | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;

  /** Starts the spawner process now (it otherwise starts with the first command). */
  start(): void {
    try {
      this.process();
    } catch {
      // Not built: the first command says so.
    }
  }

  run(options: SpawnOptions): Promise<CommandOutcome> {
    if (this.closed) return Promise.reject(new Error('the spawner is closed'));
    const child = this.process();
    const id = this.nextId++;
    return new Promise<CommandOutcome>((resolve, reject) => {
      const { signal } = options;
      const cancel = () => this.send(child, { type: 'cancel', id });
      const settle = () => {
        signal?.removeEventListener('abort', cancel);
        this.pending.delete(id);
        this.refWhileBusy(child);
      };
      this.pending.set(id, {
        resolve: (result) => {
          settle();
          resolve(result);
        },
        reject: (error) => {
          settle();
          reject(error);
        },
        ...(options.onSpawned ? { onSpawned: options.onSpawned } : {}),
      });
      this.refWhileBusy(child);
      const { signal: _signal, onSpawned: _onSpawned, ...request } = options;
      this.send(child, { type: 'run', id, ...request });
      if (signal?.aborted) cancel();
      else signal?.addEventListener('abort', cancel, { once: true });
    });
  }

  /** Stops the spawner process; commands still running fail. */
  close(): void {
    this.closed = true;
    // It ends when its channel closes (child.ts).
    if (this.child?.connected) this.child.disconnect();
    else this.child?.kill();
    this.child = undefined;
  }

  private process(): ChildProcess {
    if (this.child) return this.child;
    // The built file, also when this module runs from its TypeScript source (the tests).
    const entry = path.join(projectRoot(), 'dist', 'src', 'spawner', 'child.js');
    if (!existsSync(entry)) throw new Error(`no spawner at ${entry}: run \`npm run build\` first`);
    const child = fork(entry, [], {
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      // Not the parent's flags (a profiler, jest's --experimental-vm-modules): the spawner needs none.
      execArgv: [],
      // Its own process group, as each command's: a Ctrl-C typed at `tunnel-lab run` (which hosts the
      // worker) reaches the CLI, which cancels the run; it must not stop the commands' spawner. It still
      // ends with its parent (child.ts).
      detached: true,
    });
    child.on('message', (message: FromSpawner) => {
      const pending = this.pending.get(message.id);
      if (!pending) return;
      if (message.type === 'spawned') pending.onSpawned?.(message.pid);
      else if (message.type === 'done') pending.resolve(message.result);
      else pending.reject(new Error(`the spawner could not run the command: ${message.message}`));
    });
    child.on('exit', (code, signal) => {
      if (this.child === child) this.child = undefined;
      const why = new Error(
        `the spawner process (pid ${child.pid}) ended (${signal ?? `exit code ${code}`}) while its commands ran`,
      );
      for (const pending of [...this.pending.values()]) pending.reject(why);
    });
    child.on('error', () => {
      // An 'exit' follows and fails what was pending.
    });
    this.child = child;
    this.refWhileBusy(child);
    return child;
  }

  private send(child: ChildProcess, message: ToSpawner): void {
    if (child.connected) child.send(message);
  }

  /** The spawner holds its parent's event loop open only while commands run. */
  private refWhileBusy(child: ChildProcess): void {
    const channel = child.channel as { ref(): void; unref(): void } | undefined;
    if (this.pending.size > 0) {
      child.ref();
      channel?.ref();
    } else {
      child.unref();
      channel?.unref();
    }
  }
}
