/**
 * `kubectl logs POD|TYPE/NAME [-c CONTAINER] [--timestamps] [--since-time=T] [--tail=N]`: what a container
 * wrote. The simulated cluster runs no containers, so the sim plays the container runtime's part: a pod
 * whose annotation `sim.tunnel-lab.io/stdout` says `CONTAINER=MACHINE:PATH` has that file on that lab
 * machine (under its folder, as the ssh stand-ins see it) as the container's output; every other
 * container wrote nothing. A runtime stamps each line with the time the container wrote it; the sim stamps
 * it with the time it first reads it, and keeps the stamps in its state folder, so that later calls agree.
 * As the API server does, `--since-time` counts whole seconds. Following (`-f`) is not served.
 */
import {
  appendFileSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  statSync,
} from 'node:fs';
import path from 'node:path';
import { abort } from '../lib/exit.js';
import { podRunning, type KubeObject } from '../lib/kube-cluster.js';
import { flagOn, flagValue } from '../lib/pflag.js';
import { updateState } from '../lib/state.js';
import { podOfTarget, readCluster, type Ctx } from './context.js';

/** The annotation that names the file the sim hands out as a container's output. */
export const STDOUT_ANNOTATION = 'sim.tunnel-lab.io/stdout';

export async function logs(ctx: Ctx, rest: string[]): Promise<void> {
  const target = rest[0];
  if (!target) abort('error: expected POD or TYPE/NAME is a required argument for the logs command');
  const state = readCluster(ctx.env);
  const pod = podOfTarget(ctx, state, target, 'get the logs from', (pods) => {
    const pod = pods.find((p) => podRunning(state, p)) ?? pods[0];
    if (!pod) abort('error: timed out waiting for the condition');
    return pod;
  });
  const containers = (((pod.spec as Record<string, unknown>)?.containers ?? []) as { name: string }[]).map(
    (c) => c.name,
  );
  let container = flagValue(ctx.args, 'container');
  if (!container) {
    if (containers.length > 1)
      abort(
        `error: a container name must be specified for pod ${pod.metadata.name}, choose one of: [${containers.join(' ')}]`,
      );
    container = containers[0]!;
  }
  if (!containers.includes(container))
    abort(`error: container ${container} is not valid for pod ${pod.metadata.name}`);
  if (!podRunning(state, pod)) {
    abort(
      `Error from server (BadRequest): container "${container}" in pod "${pod.metadata.name}" is waiting to start: ContainerCreating`,
    );
  }
  const since = sinceOf(flagValue(ctx.args, 'since-time'));
  const tailFlag = flagValue(ctx.args, 'tail');
  const tail = tailFlag === undefined ? -1 : Number(tailFlag);
  if (!Number.isInteger(tail)) abort(`error: invalid argument "${tailFlag}" for "--tail" flag`);
  let lines = await stampedOutput(ctx, pod, container);
  if (since !== undefined) lines = lines.filter((l) => l.ns >= since);
  if (tail >= 0) lines = tail === 0 ? [] : lines.slice(-tail);
  const timestamps = flagOn(ctx.args, 'timestamps');
  for (const line of lines) ctx.io.out.push(timestamps ? `${rfc3339Nano(line.ns)} ${line.text}` : line.text);
}

/** `--since-time` in nanoseconds, cut to its second as the API server's metav1.Time keeps it. */
function sinceOf(value: string | undefined): bigint | undefined {
  if (value === undefined) return undefined;
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) abort(`error: --since-time must be an RFC3339 timestamp, got ${value}`);
  return BigInt(Math.floor(ms / 1000)) * 1_000_000_000n;
}

interface Stamped {
  ns: bigint;
  text: string;
}

/**
 * The container's output with the runtime's stamps: the lines stamped so far, and the ones its file got
 * since, stamped now.
 */
async function stampedOutput(ctx: Ctx, pod: KubeObject, container: string): Promise<Stamped[]> {
  const source = sourceOf(ctx, pod, container);
  if (!source) return [];
  const dir = path.join(ctx.env.stateDir, 'container-logs');
  mkdirSync(dir, { recursive: true });
  const key = `${pod.metadata.namespace}_${pod.metadata.name}_${pod.metadata.uid ?? ''}_${container}`;
  const stamped = path.join(dir, `${key}.log`);
  return updateState(dir, key, { offset: 0, last: '0' }, (read: { offset: number; last: string }) => {
    const size = existsSync(source) ? statSync(source).size : 0;
    // A file that shrank was rotated or written anew: what it holds now is new output.
    if (size < read.offset) read.offset = 0;
    if (size > read.offset) {
      const buffer = Buffer.alloc(size - read.offset);
      const fd = openSync(source, 'r');
      try {
        readSync(fd, buffer, 0, buffer.length, read.offset);
      } finally {
        closeSync(fd);
      }
      const text = buffer.toString('utf8');
      const complete = text.lastIndexOf('\n') + 1;
      if (complete > 0) {
        let last = BigInt(read.last);
        const out: string[] = [];
        for (const line of text.slice(0, complete - 1).split('\n')) {
          // Strictly later than the line before: a runtime's clock is finer than the sim's milliseconds.
          const now = BigInt(Date.now()) * 1_000_000n;
          last = now > last ? now : last + 1n;
          out.push(`${last} ${line}`);
        }
        appendFileSync(stamped, out.join('\n') + '\n');
        read.offset += Buffer.byteLength(text.slice(0, complete));
        read.last = String(last);
      }
    }
    if (!existsSync(stamped)) return [];
    return readFileSync(stamped, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const space = line.indexOf(' ');
        return { ns: BigInt(line.slice(0, space)), text: line.slice(space + 1) };
      });
  });
}

/** The file on the host that is a container's output, from the pod's annotation; undefined when none is. */
function sourceOf(ctx: Ctx, pod: KubeObject, container: string): string | undefined {
  const value = pod.metadata.annotations?.[STDOUT_ANNOTATION];
  if (!value) return undefined;
  const m = /^([^=]+)=([^:]+):(\/.*)$/.exec(value);
  if (!m)
    abort(`error: the simulated cluster reads ${STDOUT_ANNOTATION} as CONTAINER=MACHINE:/PATH, not ${value}`);
  const [, named, machine, file] = m as unknown as [string, string, string, string];
  if (named !== container) return undefined;
  return path.join(ctx.env.labState, 'vms', machine, file);
}

/** A time in nanoseconds since the epoch as kubectl prints it (RFC 3339, trailing zeros of the fraction dropped). */
export function rfc3339Nano(ns: bigint): string {
  const seconds = ns / 1_000_000_000n;
  const fraction = (ns % 1_000_000_000n).toString().padStart(9, '0').replace(/0+$/, '');
  const base = new Date(Number(seconds) * 1000).toISOString().replace(/\.\d+Z$/, '');
  return `${base}${fraction ? `.${fraction}` : ''}Z`;
}
