/** Applies the simulated lab's latency and failure injection to one stand-in invocation. */
import { latencyFor, sleepUntil, type SimEnv, type SimFault } from './env.js';
import { abort } from './exit.js';
import { updateState } from './state.js';
import { toolCall } from './tool-io.js';

/**
 * Counts this call against every fault rule it matches and fails it (exit code and stderr of the rule)
 * when its number is listed; otherwise waits until the configured latency has passed since the command
 * began (its own start-up is part of how long it takes).
 */
export async function simulateCall(env: SimEnv, tool: string, args: string[]): Promise<void> {
  const commandLine = [tool, ...args].join(' ');
  const failing = await injectedFault(env, commandLine);
  const delay = latencyFor(env.sim, commandLine);
  if (delay > 0) await sleepUntil(toolCall().startedAt + delay);
  if (failing) abort(failing.stderr ?? `simulated failure of: ${commandLine}`, failing.exitCode ?? 1);
}

/**
 * Counts one event (a command line, or a stage such as `provision NAME`) against every fault rule it
 * matches; returns the rule that fails it, if its number is listed.
 */
export async function injectedFault(env: SimEnv, event: string): Promise<SimFault | undefined> {
  // Without rules there is nothing to count: no call waits for the others' lock on the counts.
  if (env.sim.faults.length === 0) return undefined;
  return updateState<Record<string, number>, SimFault | undefined>(env.stateDir, 'calls', {}, (counts) => {
    for (const [i, fault] of env.sim.faults.entries()) {
      if (!new RegExp(fault.match).test(event)) continue;
      const key = `fault-${i}`;
      counts[key] = (counts[key] ?? 0) + 1;
      if (fault.calls.includes(counts[key])) return fault;
    }
    return undefined;
  });
}
