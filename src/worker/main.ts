/** `npm run worker`: serves the tunnel-lab task queue until SIGINT or SIGTERM. */
import { readFileSync } from 'node:fs';
import { settings } from '../config.js';
import { procStat } from '../proc.js';
import { createWorker } from './create-worker.js';
import { installCompactLogger } from './logging.js';

async function main(): Promise<void> {
  installCompactLogger();
  const config = settings();
  const running = await createWorker({
    address: config.address,
    namespace: config.namespace,
    taskQueue: config.taskQueue,
    deps: {
      projectRoot: config.projectRoot,
      stateRoot: config.stateRoot,
      playbookDirs: config.playbookDirs,
      ...(config.labHost ? { labHost: config.labHost } : {}),
    },
  });
  const queues = [config.taskQueue, ...(running.hostWorker ? [running.hostWorker.options.taskQueue] : [])];
  console.log(
    `worker serving task queue ${queues.join(' and ')} at ${config.address} (namespace ${config.namespace}); Ctrl-C stops it`,
  );
  const orphaned = stopWithNpm(() => {
    console.log('npm, which started this worker, is gone: stopping');
    running.shutdown();
  });
  try {
    await running.run();
  } finally {
    clearInterval(orphaned);
    await running.close();
  }
}

/**
 * Started by `npm run worker`, the worker runs under npm (npm → sh → node): when npm is killed, the
 * worker would poll on, re-parented, with nobody to stop it. It finds npm among its ancestors and stops
 * when that process is gone.
 */
function stopWithNpm(stop: () => void): NodeJS.Timeout | undefined {
  if (process.env.npm_lifecycle_event !== 'worker') return undefined;
  const npm = npmAncestor();
  if (!npm) return undefined;
  const timer = setInterval(() => {
    if (procStat(npm.pid)?.started === npm.started) return;
    clearInterval(timer);
    stop();
  }, 500);
  timer.unref();
  return timer;
}

/** The nearest ancestor running npm, with its start time (which tells it from a later process with its pid). */
function npmAncestor(): { pid: number; started: string } | undefined {
  let pid = process.ppid;
  for (let depth = 0; depth < 4 && pid > 1; depth++) {
    const stat = procStat(pid);
    if (!stat) return undefined;
    // npm names itself by its title (`npm run worker`); run as a script it is `node .../npm-cli.js ...`.
    const cmdline = readFileOr(`/proc/${pid}/cmdline`).split('\0').join(' ');
    if (/(^|[\s/])npm(-cli\.js)?(\s|$)/.test(cmdline)) return { pid, started: stat.started };
    pid = stat.parent;
  }
  return undefined;
}

function readFileOr(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

main().catch((err: unknown) => {
  console.error(`worker failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
