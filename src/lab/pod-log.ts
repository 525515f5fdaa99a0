/**
 * Logs of a machine that is a pod of the cluster (a lab of kind existing whose proxy runs in it), read
 * through the API server with `kubectl logs --timestamps` instead of over ssh.
 *
 * A pod's log has no byte offset a reader can keep: it is rotated by the kubelet, and a Deployment's pod may
 * be replaced. What the container runtime gives every line is the time it was written, so a mark is the time
 * of the last line then (and how many lines bore that very time), and a reader keeps to the lines after it.
 * `--since-time` narrows what the API server sends, but it counts in whole seconds: the lines of the mark's
 * second are sorted out here.
 */
import { LabConfigError, LabToolError } from '../errors.js';
import type { LabDefinition } from './definition.js';
import type { LabRuntime } from './runtime.js';

/** A container's log on a machine that is a pod: where kubectl logs finds it. */
export interface PodLog {
  machine: string;
  namespace: string;
  /** A pod name, or TYPE/NAME (kubectl logs picks one of its pods). */
  name: string;
  container: string;
}

/** Where a reader of a pod's log has got to: the time of the last line read, and how many lines bore it. */
export interface PodLogCursor {
  /** RFC 3339 with nanoseconds, as kubectl prints it; null: before the first line. */
  time: string | null;
  atTime: number;
}

export const LOG_START: PodLogCursor = { time: null, atTime: 0 };

/** A line of `kubectl logs --timestamps`. */
export interface StampedLine {
  time: string;
  text: string;
}

/** How often a watch asks the API server for new lines. */
const POLL_MS = 500;
/** How many of the last lines a mark reads to find the last time and the lines that bore it. */
const MARK_TAIL = 100;
const KUBECTL_TIMEOUT_MS = 30_000;

/**
 * The container log a step names on a machine that is a pod (`file`: a purpose the lab maps to a
 * container); undefined for a machine reached over ssh.
 */
export function podLogOf(def: LabDefinition, machine: string, file: string): PodLog | undefined {
  const pod = def.machines[machine]?.pod;
  if (!pod) return undefined;
  const container = file.startsWith('/') ? undefined : def.machines[machine]!.files[file];
  if (!container) {
    throw new LabConfigError(
      `machine ${machine} of lab ${def.name} is a pod: its logs are what its containers write, so a step names ` +
        `one of its files (${Object.keys(def.machines[machine]!.files).join(', ') || 'none yet'}), not ${file} (${def.file})`,
    );
  }
  return { machine, namespace: pod.namespace, name: pod.name, container };
}

/** How a pod's log is shown in outputs and errors. */
export function podLogName(log: PodLog): string {
  return `${log.namespace}/${log.name} container ${log.container}`;
}

const TIME = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/;

/** A timestamp as [seconds since the epoch, nanoseconds], for comparing (kubectl trims trailing zeros). */
function instant(time: string): [number, number] {
  const m = TIME.exec(time);
  if (!m) throw new Error(`not an RFC 3339 time: ${time}`);
  return [Date.parse(`${m[1]}${m[3]}`) / 1000, Number((m[2] ?? '').padEnd(9, '0'))];
}

export function compareTimes(a: string, b: string): number {
  const [as, an] = instant(a);
  const [bs, bn] = instant(b);
  return as - bs || an - bn;
}

/** The lines of `kubectl logs --timestamps` output (the runtime writes whole lines only). */
export function parseStamped(output: string): StampedLine[] {
  return output.split('\n').flatMap((line) => {
    const space = line.indexOf(' ');
    const time = space > 0 ? line.slice(0, space) : line;
    if (!TIME.test(time)) return [];
    return [{ time, text: space > 0 ? line.slice(space + 1) : '' }];
  });
}

/** The lines after `cursor`, in order, and the cursor after them. */
export function linesAfter(
  lines: StampedLine[],
  cursor: PodLogCursor,
): { fresh: StampedLine[]; cursor: PodLogCursor } {
  const fresh: StampedLine[] = [];
  let seenAtTime = 0;
  for (const line of lines) {
    const order = cursor.time === null ? 1 : compareTimes(line.time, cursor.time);
    if (order < 0) continue;
    if (order === 0 && ++seenAtTime <= cursor.atTime) continue;
    fresh.push(line);
  }
  const last = lines.at(-1);
  if (!last) return { fresh, cursor };
  return {
    fresh,
    cursor: { time: last.time, atTime: lines.filter((l) => compareTimes(l.time, last.time) === 0).length },
  };
}

/** The whole second a time falls in, as `--since-time` takes it (the API server drops the fraction). */
function wholeSecond(time: string): string {
  return new Date(instant(time)[0] * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
}

/** `kubectl logs` of the container, with timestamps: the lines from `since`'s second on, or the last `tail`. */
export async function readPodLog(
  lab: LabRuntime,
  log: PodLog,
  options: { since?: string | null; tail?: number },
): Promise<StampedLine[]> {
  const args = ['-n', log.namespace, 'logs', log.name, '-c', log.container, '--timestamps'];
  if (options.since) args.push(`--since-time=${wholeSecond(options.since)}`);
  if (options.tail !== undefined) args.push(`--tail=${options.tail}`);
  const result = await lab.kubectl(args, { check: false, timeoutMs: KUBECTL_TIMEOUT_MS });
  if (result.exitCode !== 0)
    throw new LabToolError(['kubectl', ...args], result.exitCode, result.stderr.trim());
  return parseStamped(result.stdout);
}

/** Where the container's log ends now: later readers see only the lines written after it. */
export async function markPodLog(lab: LabRuntime, log: PodLog): Promise<PodLogCursor> {
  return linesAfter(await readPodLog(lab, log, { tail: MARK_TAIL }), LOG_START).cursor;
}

/**
 * Hands each line written after `from` to `onLine`, asking the API server every half second, until `stop`
 * aborts; then reads once more, so that a line written just before the end is not missed. `onOpen` is
 * called once the first read answered. A read that fails is tried again at the next tick; the watch fails
 * when its first read or its last one failed (a pod replaced meanwhile is found again by kubectl).
 */
export async function followPodLog(
  lab: LabRuntime,
  log: PodLog,
  from: PodLogCursor,
  onLine: (line: string) => void,
  options: { stop: AbortSignal; cancel: AbortSignal; onOpen?: () => void },
): Promise<void> {
  let cursor = from;
  let opened = false;
  for (;;) {
    const last = options.stop.aborted;
    try {
      const read = linesAfter(await readPodLog(lab, log, { since: cursor.time }), cursor);
      cursor = read.cursor;
      if (!opened) {
        opened = true;
        options.onOpen?.();
      }
      for (const line of read.fresh) onLine(line.text);
    } catch (err) {
      if (options.cancel.aborted) return;
      if (!opened || last) throw err;
    }
    if (last || options.cancel.aborted) return;
    await sleep(POLL_MS, options.stop);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}
