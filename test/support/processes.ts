/** Starts the project's own programs (built worker, CLI) as child processes, as a user would run them. */
import { mkdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { root, serverAddress } from './temporal.js';

/** Whether a process runs: it exists and is not a zombie (an init that does not reap leaves killed ones so). */
export function alive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\S+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

export function workerProcess(
  taskQueue: string,
  stateRoot: string,
  logName: string,
  address = serverAddress(),
): ResultPromise {
  mkdirSync(path.join(root, 'test-artifacts'), { recursive: true });
  return execa('node', [path.join(root, 'dist', 'src', 'worker', 'main.js')], {
    env: {
      TEMPORAL_ADDRESS: address,
      TEMPORAL_TASK_QUEUE: taskQueue,
      TUNNEL_LAB_STATE: stateRoot,
      // Tests write their playbooks into temp folders (writePlaybook).
      TUNNEL_LAB_PLAYBOOK_DIRS: os.tmpdir(),
    },
    stdout: { file: path.join(root, 'test-artifacts', `${logName}.log`), append: true },
    stderr: { file: path.join(root, 'test-artifacts', `${logName}.log`), append: true },
    reject: false,
  });
}

/** Runs the built `tunnel-lab` CLI against the test server. */
export function cli(
  args: string[],
  options: { taskQueue: string; stateRoot: string; env?: Record<string, string> },
) {
  return execa('node', [path.join(root, 'bin', 'tunnel-lab.js'), ...args], {
    env: {
      TEMPORAL_ADDRESS: serverAddress(),
      TEMPORAL_TASK_QUEUE: options.taskQueue,
      TUNNEL_LAB_STATE: options.stateRoot,
      ...options.env,
    },
    reject: false,
    all: true,
  });
}

/** Runs the real `temporal` CLI (the one the global setup found or built) against the test server. */
export function temporalCli(command: string[], args: string[]) {
  return execa(process.env.TEMPORAL_CLI!, [...command, '--address', serverAddress(), ...args]);
}

/** Starts a run exactly as the README tells users to: `temporal workflow start --type tunnelScenario`. */
export function temporalStart(taskQueue: string, workflowId: string, input: string) {
  return temporalCli(
    ['workflow', 'start'],
    ['--type', 'tunnelScenario', '--task-queue', taskQueue, '--workflow-id', workflowId, '--input', input],
  );
}
