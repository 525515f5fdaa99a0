import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { LabToolError } from '../src/errors.js';
import { namedFile } from '../src/lab/definition.js';
import { markPodLog, podLogName, podLogOf, type PodLogCursor } from '../src/lab/pod-log.js';
import type { LabRuntime } from '../src/lab/runtime.js';
import { defineAction, notApplicable, type NotApplicable } from './action.js';

export const logTarget = {
  machine: z.string().describe('Lab machine the log lives on (e.g. external-proxy).'),
  file: z
    .string()
    .describe(
      'The log: a file purpose of the machine in the lab definition (e.g. accessLog) or an absolute path.',
    ),
};

export const logMarkInput = z
  .object({
    ...logTarget,
    name: z
      .string()
      .regex(/^[\w-]+$/)
      .describe('Name later log.expect steps refer to with `since`.'),
  })
  .strict();

export interface LogMark {
  machine: string;
  /** The file; on a machine that is a pod, its container's log as podLogName shows it. */
  path: string;
  /** Size of the file in bytes when the mark was taken (0 for a pod's log). */
  offset: number;
  /** A pod's log: where it ended when the mark was taken. */
  cursor?: PodLogCursor;
}

/**
 * On a lab of kind existing, a log the lab gives no way to read (no such machine, or no such file on it):
 * why its log steps are skipped. Undefined when the log can be read (and on Vagrant labs, where a missing
 * machine or file is a mistake in the lab file).
 */
export function unreadableLog(lab: LabRuntime, machine: string, file: string): NotApplicable | undefined {
  if (!lab.existing) return undefined;
  if (!lab.def.machines[machine]) {
    return notApplicable(
      `the lab ${lab.def.name} names no machine ${machine}, so its log is not read: the probes carry the verdict`,
    );
  }
  if (!namedFile(lab.def, machine, file)) {
    return notApplicable(
      `machine ${machine} of lab ${lab.def.name} names no ${file} file, so it is not read: the probes carry the verdict`,
    );
  }
  return undefined;
}

export function markFile(stateDir: string, name: string): string {
  return path.join(stateDir, 'marks', `${name}.json`);
}

/** Remembers how long a log on a machine is now, so that a later log.expect looks only at what comes after. */
export const logMarkAction = defineAction({
  name: 'log.mark',
  description:
    "Remember the current end of a log file on a lab machine (read over ssh; a pod's log through kubectl logs).",
  input: logMarkInput,
  policy: {
    timeout: '1m',
    maxTimeout: '10m',
    heartbeatTimeout: '30s',
    retry: { attempts: 5, initialInterval: '1s', backoff: 2, maxInterval: '10s' },
    maxAttempts: 20,
  },
  idempotent: true,
  summary: (input) => `log.mark ${input.name} on ${input.machine}:${input.file}`,
  examples: [
    {
      description: 'Mark the proxy access log before applying the tunnel',
      yaml: 'id: mark-before\nuses: log.mark\nwith: { machine: external-proxy, file: accessLog, name: before-tunnel }',
    },
  ],
  changes: () => [],
  create: () => async (input, ctx) => {
    const lab = await ctx.lab();
    const unreadable = unreadableLog(lab, input.machine, input.file);
    if (unreadable) return unreadable;
    const pod = podLogOf(lab.def, input.machine, input.file);
    if (pod) {
      const mark: LogMark = {
        machine: input.machine,
        path: podLogName(pod),
        offset: 0,
        cursor: await markPodLog(lab, pod),
      };
      await saveMark(ctx.stateDir, input.name, mark);
      return { name: input.name, ...mark };
    }
    const file = lab.fileOn(input.machine, input.file);
    // Logs are often root's (nginx's folder is 0750 www-data:adm on Debian): read them as the lab says.
    const result = await lab.withSsh(input.machine, (ssh) =>
      ssh.run([...lab.sudo(input.machine), 'stat', '-c', '%s', file], ctx.signal),
    );
    // A log that does not exist yet is empty: everything written to it later counts.
    const missing = result.code !== 0 && /No such file/i.test(result.stderr);
    if (result.code !== 0 && !missing)
      throw new LabToolError(['stat', file], result.code, result.stderr.trim());
    const mark: LogMark = {
      machine: input.machine,
      path: file,
      offset: missing ? 0 : Number(result.stdout.trim()),
    };
    await saveMark(ctx.stateDir, input.name, mark);
    return { name: input.name, ...mark };
  },
});

async function saveMark(stateDir: string, name: string, mark: LogMark): Promise<void> {
  await mkdir(path.dirname(markFile(stateDir, name)), { recursive: true });
  await writeFile(markFile(stateDir, name), JSON.stringify(mark));
}
