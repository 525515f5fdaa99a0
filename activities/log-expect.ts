import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { isDuration, toMs } from '../src/duration.js';
import { ExpectationError, LabConfigError } from '../src/errors.js';
import { followPodLog, LOG_START, podLogName, podLogOf } from '../src/lab/pod-log.js';
import { isRegex } from '../src/validation.js';
import { defineAction } from './action.js';
import { logTarget, markFile, unreadableLog, type LogMark } from './log-mark.js';

const duration = z.string().refine(isDuration, 'must be a duration such as 10s');

export const logExpectInput = z
  .object({
    ...logTarget,
    since: z
      .string()
      .optional()
      .describe('A log.mark name: only lines written after it count. The whole file otherwise.'),
    pattern: z
      .string()
      .refine(isRegex, 'is not a valid regular expression')
      .describe('Regular expression a line must match.'),
    absent: z.boolean().default(false).describe('Expect no matching line (watched for the whole `within`).'),
    count: z
      .number()
      .int()
      .min(1)
      .optional()
      .describe('Expect exactly this many matching lines (at least one when unset).'),
    within: duration
      .default('30s')
      .describe(
        'How long to watch the log for the lines (with absent: for none), from when the machine is reached.',
      ),
    settle: duration
      .default('1s')
      .describe('With count: how long to keep watching after the count is reached, to catch extra lines.'),
  })
  .strict();

/** How many matched lines, and how much of each, a step shows as its evidence. */
const EVIDENCE_LINES = 5;
const EVIDENCE_WIDTH = 240;

export interface LogExpectOutput {
  path: string;
  matches: string[];
  /** The last lines read, as evidence when the check fails. */
  tail: string[];
}

/**
 * Streams a log on a lab machine (tail -F over ssh) from a mark until the expected lines show up or the
 * deadline passes, instead of sleeping and re-reading. The log of a machine that is a pod is read through
 * the API server instead (src/lab/pod-log.ts), every half second.
 */
export const logExpectAction = defineAction({
  name: 'log.expect',
  description: 'Expect lines matching a pattern (N times, or none) in a log on a lab machine since a mark.',
  input: logExpectInput,
  policy: {
    timeout: '5m',
    maxTimeout: '1h',
    heartbeatTimeout: '30s',
    retry: { attempts: 3, initialInterval: '2s', backoff: 2, maxInterval: '30s' },
    maxAttempts: 20,
  },
  idempotent: true,
  summary: (input) =>
    `log.expect ${input.absent ? 'no' : (input.count ?? '≥1')} /${input.pattern}/ in ${input.machine}:${input.file}` +
    (input.since ? ` since ${input.since}` : ''),
  expects: (input) =>
    `${input.absent ? 'no line' : `${input.count ?? 'at least one'} line(s)`} matching /${input.pattern}/ in ` +
    `${input.machine}:${input.file}${input.since ? ` since ${input.since}` : ''}, within ${input.within}`,
  evidence: (output: LogExpectOutput, input) => {
    const where = `${input.machine}:${input.file}${input.since ? ` since ${input.since}` : ''}`;
    if (output.matches.length === 0)
      return [`no line matching /${input.pattern}/ in ${where} within ${input.within}`];
    const shown = output.matches.slice(0, EVIDENCE_LINES).map((line) => `  ${line.slice(0, EVIDENCE_WIDTH)}`);
    const more = output.matches.length - shown.length;
    return [
      `${output.matches.length} line(s) matching in ${where}:`,
      ...shown,
      ...(more > 0 ? [`  … ${more} more`] : []),
    ];
  },
  examples: [
    {
      description: 'One CONNECT line per probed host in the proxy log since the mark',
      yaml: 'id: tunnelled\nuses: log.expect\nwith:\n  machine: external-proxy\n  file: accessLog\n  since: before-probes\n  pattern: \'"CONNECT \\S+ - HTTP/1.1" - 200 .* www\\.google\\.com:443\'\n  count: 1',
    },
  ],
  changes: () => [],
  create: () => async (input, ctx) => {
    const lab = await ctx.lab();
    const unreadable = unreadableLog(lab, input.machine, input.file);
    if (unreadable) return unreadable;
    const pod = podLogOf(lab.def, input.machine, input.file);
    let file = pod ? podLogName(pod) : lab.fileOn(input.machine, input.file);
    let offset = 0;
    let cursor = LOG_START;
    if (input.since) {
      let mark: LogMark;
      try {
        mark = JSON.parse(await readFile(markFile(ctx.stateDir, input.since), 'utf8')) as LogMark;
      } catch {
        throw new LabConfigError(
          `no log mark named "${input.since}": add a log.mark step with name ${input.since} before this one`,
        );
      }
      if (mark.machine !== input.machine || Boolean(pod) !== Boolean(mark.cursor)) {
        throw new LabConfigError(
          `the log mark "${input.since}" was taken of ${mark.machine}:${mark.path}, not of ${input.machine}:${file}`,
        );
      }
      file = mark.path;
      offset = mark.offset;
      cursor = mark.cursor ?? LOG_START;
    }
    const regex = new RegExp(input.pattern);
    const matches: string[] = [];
    const seen: string[] = [];
    const within = toMs(input.within);
    const settle = toMs(input.settle);
    const stop = new AbortController();
    const onCancel = () => stop.abort();
    ctx.signal.addEventListener('abort', onCancel, { once: true });
    let settleTimer: NodeJS.Timeout | undefined;
    let pending = '';
    let deadline: NodeJS.Timeout | undefined;
    const beat = setInterval(() => ctx.heartbeat({ matches: matches.length }), 1000);
    const onLine = (line: string) => {
      seen.push(line);
      if (seen.length > 20) seen.shift();
      if (!regex.test(line)) return;
      matches.push(line);
      if (input.absent) stop.abort();
      else if (input.count === undefined) stop.abort();
      else if (matches.length > input.count) stop.abort();
      else if (matches.length === input.count) settleTimer ??= setTimeout(() => stop.abort(), settle);
    };
    // The window starts once the log is being read: connecting, slow on a busy host, is not time spent
    // watching the log.
    const startWindow = () => (deadline = setTimeout(() => stop.abort(), within));
    try {
      if (pod) {
        await followPodLog(lab, pod, cursor, onLine, {
          stop: stop.signal,
          cancel: ctx.signal,
          onOpen: startWindow,
        });
      } else {
        await lab.withSsh(input.machine, async (ssh) => {
          // `timeout` ends tail on the machine too, even if the channel close does not reach it.
          const argv = [
            ...lab.sudo(input.machine),
            'timeout',
            String(Math.ceil((within + settle) / 1000) + 5),
            'tail',
            '-c',
            `+${offset + 1}`,
            '-F',
            file,
          ];
          await ssh.stream(
            argv,
            (chunk) => {
              pending += chunk;
              const lines = pending.split('\n');
              pending = lines.pop() ?? '';
              for (const line of lines) onLine(line);
            },
            { signal: stop.signal, onOpen: startWindow },
          );
        });
      }
    } finally {
      clearTimeout(deadline);
      clearTimeout(settleTimer);
      clearInterval(beat);
      ctx.signal.removeEventListener('abort', onCancel);
    }
    if (ctx.signal.aborted) throw ctx.signal.reason ?? new Error('cancelled');
    const output: LogExpectOutput = { path: file, matches, tail: seen.slice(-10) };
    const where = `${input.machine}:${file}${input.since ? ` since mark ${input.since}` : ''}`;
    if (input.absent && matches.length > 0) {
      throw new ExpectationError(
        `expected no line matching /${input.pattern}/ in ${where}, found: ${matches[0]}`,
      );
    }
    if (!input.absent && input.count !== undefined && matches.length !== input.count) {
      throw new ExpectationError(
        `expected ${input.count} line(s) matching /${input.pattern}/ in ${where} within ${input.within}, found ${matches.length}` +
          (matches.length ? `: ${matches.join(' | ')}` : ''),
      );
    }
    if (!input.absent && matches.length === 0) {
      throw new ExpectationError(
        `no line matching /${input.pattern}/ in ${where} within ${input.within}` +
          (seen.length ? `; last lines: ${seen.slice(-3).join(' | ')}` : '; the log got no new lines'),
      );
    }
    return output;
  },
});
