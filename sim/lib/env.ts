/**
 * What every stand-in tool of the simulated lab shares: where the simulated lab keeps its state, its lab
 * definition, latencies and failure injection. The stand-ins are separate processes, like the real tools.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { toMs } from '../../src/duration.js';
import { abort, CliExit } from './exit.js';
import { callerPath, toolCall } from './tool-io.js';

export interface SimFault {
  /** Regular expression tested against the command line (tool name and arguments joined by spaces). */
  match: string;
  /** Which matching calls fail, counted from 1 across the whole run (e.g. [2] fails the second). */
  calls: number[];
  exitCode?: number;
  stderr?: string;
}

export interface SimConfig {
  /** Command-line regular expression → how long the matching command takes (e.g. `"^vagrant up": 2s`). */
  latency: Record<string, string>;
  faults: SimFault[];
  /** How long Istio config takes to reach the proxies after it is applied (istiod's push). */
  configDelay: string;
  /**
   * `model`: the k8s machine's cluster is the stand-in kubectl's; `real`: it runs the real control plane
   * (sim/lib/control-plane.ts), as in the local lab.
   */
  controlPlane: 'model' | 'real';
}

/** A real istiod pushes a change to the proxies in about a second; the sim waits this long unless told otherwise. */
export const DEFAULT_CONFIG_DELAY = '2s';

export interface SimEnv {
  /** Folder of the simulated lab's state (machines, cluster, files of the VMs). */
  stateDir: string;
  /** The lab definition, as parsed YAML. */
  lab: Record<string, unknown> & {
    machines: Record<string, { files?: Record<string, string>; ip?: string }>;
  };
  labFile: string;
  /** The run's lab state folder (TUNNEL_LAB_STATE_DIR), what `{state}` in the lab file stands for. */
  labState: string;
  sim: SimConfig;
}

/** The simulated lab as the current call's environment names it (see tool-io.ts). */
export function simEnv(env: NodeJS.ProcessEnv = toolCall().env): SimEnv {
  // Relative to the caller's folder, as a path in the environment is for a process of its own.
  const [stateDir, labFile, labState] = [
    env.TUNNEL_LAB_SIM_STATE,
    env.TUNNEL_LAB_CONFIG,
    env.TUNNEL_LAB_STATE_DIR,
  ].map((value) => (value ? callerPath(value) : undefined));
  if (!stateDir || !labFile || !labState) {
    abort(
      'this is a stand-in tool of the simulated lab: run it through a lab definition ' +
        '(TUNNEL_LAB_SIM_STATE, TUNNEL_LAB_CONFIG and TUNNEL_LAB_STATE_DIR must be set)',
    );
  }
  mkdirSync(stateDir, { recursive: true });
  const { lab, sim } = labOf(stateDir, labFile, labState);
  return { stateDir, lab, labFile, labState, sim };
}

/** Cache files this process wrote: concurrent calls in the stand-in host each write their own. */
let cacheWrites = 0;

/** `<sim state>/lab-file.json`: what simEnv made of the lab file, and from which text and paths. */
interface LabCache {
  labFile: string;
  labState: string;
  text: string;
  lab: SimEnv['lab'];
  sim: SimConfig;
}

/**
 * The lab definition and sim settings from the lab file. Parsing YAML took ~10 ms of every call, so the
 * result is kept in the sim state folder and used again while the file's text is the same.
 */
function labOf(stateDir: string, labFile: string, labState: string): Pick<SimEnv, 'lab' | 'sim'> {
  const text = readFileSync(labFile, 'utf8');
  const cacheFile = path.join(stateDir, 'lab-file.json');
  try {
    const cached = JSON.parse(readFileSync(cacheFile, 'utf8')) as LabCache;
    if (cached.text === text && cached.labFile === labFile && cached.labState === labState) {
      return { lab: cached.lab, sim: cached.sim };
    }
  } catch {
    // None yet, or unreadable: parse the lab file.
  }
  const lab = parse(text) as SimEnv['lab'];
  const raw = (lab.sim ?? {}) as Partial<SimConfig>;
  // Paths in the lab file may use {state} and {lab}, as the lab loader substitutes them.
  const substituted = JSON.parse(
    JSON.stringify(lab)
      .replace(/\{state\}/g, labState)
      .replace(/\{lab\}/g, path.dirname(labFile)),
  ) as SimEnv['lab'];
  const sim: SimConfig = {
    latency: raw.latency ?? {},
    faults: raw.faults ?? [],
    configDelay: raw.configDelay ?? DEFAULT_CONFIG_DELAY,
    controlPlane: raw.controlPlane === 'real' ? 'real' : 'model',
  };
  const cache: LabCache = { labFile, labState, text, lab: substituted, sim };
  try {
    // Stand-ins run in parallel: each writes its own file and renames it into place.
    const temporary = `${cacheFile}.${process.pid}.${++cacheWrites}.tmp`;
    writeFileSync(temporary, JSON.stringify(cache), { mode: 0o600 });
    renameSync(temporary, cacheFile);
  } catch {
    // Only a cache: the next call parses the lab file again.
  }
  return { lab: substituted, sim };
}

/** Prints to stderr and exits, as a failing tool does. */
export function fail(message: string, code = 1): never {
  process.stderr.write(message.endsWith('\n') ? message : `${message}\n`);
  process.exit(code);
}

/** Waits `ms`; in the stand-in host, a call whose caller went away ends instead (see tool-io.ts). */
export function sleep(ms: number): Promise<void> {
  const { signal } = toolCall();
  return new Promise((resolve, reject) => {
    const gone = () => {
      clearTimeout(timer);
      reject(new CliExit('', 130));
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', gone);
      resolve();
    }, ms);
    if (signal.aborted) gone();
    else signal.addEventListener('abort', gone, { once: true });
  });
}

/** Waits until the time `at` (epoch ms), at once when it has passed; ends early as `sleep` does. */
export function sleepUntil(at: number): Promise<void> {
  return sleep(Math.max(0, at - Date.now()));
}

export function latencyFor(sim: SimConfig, commandLine: string): number {
  let total = 0;
  for (const [pattern, duration] of Object.entries(sim.latency)) {
    if (new RegExp(pattern).test(commandLine)) total += toMs(duration);
  }
  return total;
}
