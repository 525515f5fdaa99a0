/**
 * What the test run leaves running: the daemons its tests start (sshd, nginx and the stand-in host of simulated machines,
 * workers, Temporal servers, the production stack, Envoy, the real control plane, istiod) must all be
 * gone when it ends. The global setup notes which processes exist before; the teardown looks for new
 * daemons, gives them a moment to finish stopping, then stops the rest and fails the run, naming them.
 */
import { readdirSync, readFileSync } from 'node:fs';

const DAEMONS =
  /sshd -f|nginx: master|worker\/main\.js|temporal server start-dev|temporal-server|ui-server|postgres -D|envoy .*-c |kube-apiserver|kube-controller-manager|kube-scheduler|\betcd\b|pilot-discovery|\bkwok\b|standin-host\.mjs/;

function commandLine(pid) {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return '';
  }
}

function zombie(pid) {
  try {
    return /^\S+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

function pids() {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .map(Number);
}

/** The processes running now, to tell them from the ones the tests start. */
export function processesBefore() {
  return new Set(pids());
}

/** Daemons started since `before` that still run. */
function newDaemons(before) {
  return pids()
    .filter((pid) => !before.has(pid) && pid !== process.pid && !zombie(pid))
    .map((pid) => ({ pid, command: commandLine(pid) }))
    .filter(({ command }) => DAEMONS.test(command));
}

/** Fails, after stopping them, when daemons the tests started outlive the test run. */
export async function checkLeftovers(before) {
  const deadline = Date.now() + 10_000;
  let left = newDaemons(before);
  while (left.length > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    left = newDaemons(before);
  }
  if (left.length === 0) return;
  for (const { pid } of left) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Gone meanwhile.
    }
  }
  throw new Error(
    `the tests left ${left.length} process(es) running (now stopped):\n` +
      left.map(({ pid, command }) => `  ${pid} ${command.slice(0, 200)}`).join('\n'),
  );
}
