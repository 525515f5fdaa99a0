import { z } from 'zod';
import { LabConfigError } from '../src/errors.js';
import type { LabRuntime } from '../src/lab/runtime.js';
import { ToolVersions } from '../src/lab/tool-versions.js';
import { defineAction } from './action.js';

/** The oldest releases the lab actions work with (what the README's prerequisites say). */
export const MINIMUM_VERSIONS = {
  // `vagrant status --machine-readable` and `box list --machine-readable` as parsed here.
  vagrant: '2.3.0',
  // networking.istio.io/v1 objects and `kubectl delete` naming the namespace are read as 1.30 prints them.
  kubectl: '1.30.0',
} as const;

const TOOLS = ['vagrant', 'kubectl', 'istioctl'] as const;
type Tool = (typeof TOOLS)[number];

/** Input of tools.check. */
export const toolsCheckInput = z
  .object({
    tools: z
      .array(z.enum(TOOLS))
      .min(1)
      .default([...TOOLS])
      .describe('Which of the lab tools to check; all three by default.'),
  })
  .strict();

export interface ToolVersion {
  tool: Tool;
  /** The program the lab file names. */
  program: string;
  version: string;
  /** What the lab needs: `>= x.y.z`, or `= x.y.z` for the pinned istioctl. */
  wants: string;
  /** Set when the worker kept the release from an earlier ask of the same program file. */
  remembered?: true;
}

/** Output of tools.check. */
export interface ToolsCheckOutput {
  tools: ToolVersion[];
}

function parts(version: string): number[] {
  return (/(\d+)\.(\d+)(?:\.(\d+))?/.exec(version) ?? []).slice(1, 4).map((n) => Number(n ?? 0));
}

/** -1, 0 or 1 as version `a` is older than, the same as, or newer than `b` (x.y.z, any prefix ignored). */
export function compareVersions(a: string, b: string): number {
  const [x, y] = [parts(a), parts(b)];
  for (let i = 0; i < 3; i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) < (y[i] ?? 0) ? -1 : 1;
  return 0;
}

/** The version a lab tool reports, as text (e.g. `2.4.1`, `v1.36.1`, `1.28.3`). */
async function reportedVersion(lab: LabRuntime, tool: Tool): Promise<string> {
  const run = (args: string[]) => lab.tool(tool, args, { timeoutMs: 60_000 });
  if (tool === 'vagrant') return /Vagrant (\S+)/.exec((await run(['--version'])).stdout)?.[1] ?? '';
  if (tool === 'kubectl') {
    return /Client Version:\s*(\S+)/.exec((await run(['version', '--client'])).stdout)?.[1] ?? '';
  }
  const { stdout } = await run(['version', '--remote=false']);
  return /client version:\s*(\S+)/.exec(stdout)?.[1] ?? stdout.trim();
}

/** How a tool's release compares with what the lab needs; throws LabConfigError when it does not fit. */
export async function checkTool(
  lab: LabRuntime,
  tool: Tool,
  known: ToolVersions = new ToolVersions(),
): Promise<ToolVersion | undefined> {
  const program = lab.def.tools[tool] ?? tool;
  const reported = await known.get(program, lab.def.env.PATH ?? process.env.PATH, () =>
    reportedVersion(lab, tool),
  );
  const { version } = reported;
  const remembered = reported.remembered ? { remembered: true as const } : {};
  const found = version || '(no version reported)';
  if (tool === 'istioctl') {
    const pinned = lab.def.istio?.version;
    if (!pinned) return undefined;
    if (version !== pinned) {
      throw new LabConfigError(
        `${program} is istioctl ${found}, but ${lab.def.file} pins Istio ${pinned}: run ` +
          `scripts/get-istioctl.sh ${pinned} and set tools.istioctl to .tools/bin/istioctl, or change istio.version`,
      );
    }
    return { tool, program, version, wants: `= ${pinned}`, ...remembered };
  }
  const minimum = MINIMUM_VERSIONS[tool];
  if (!version || compareVersions(version, minimum) < 0) {
    throw new LabConfigError(
      `${program} is ${tool} ${found}; the lab actions need ${tool} ${minimum} or later ` +
        `(install a newer one, or set tools.${tool} in ${lab.def.file})`,
    );
  }
  return { tool, program, version, wants: `>= ${minimum}`, ...remembered };
}

/** Checks the lab's tools before anything boots: a wrong release fails the run in seconds, not minutes in. */
export const toolsCheckAction = defineAction({
  name: 'tools.check',
  description:
    "Check the lab's local tools before anything starts: vagrant and kubectl at least the releases the " +
    'actions need, istioctl the release the lab file pins.',
  input: toolsCheckInput,
  policy: {
    timeout: '2m',
    maxTimeout: '10m',
    heartbeatTimeout: '30s',
    retry: { attempts: 2, initialInterval: '1s', backoff: 2, maxInterval: '10s' },
    maxAttempts: 5,
  },
  idempotent: true,
  summary: (input) => `tools.check ${input.tools.join(' ')}`,
  evidence: (output: ToolsCheckOutput) =>
    output.tools.map(
      (t) =>
        `${t.tool} ${t.version} (wants ${t.wants}): ${t.program}${t.remembered ? ' (as it reported earlier)' : ''}`,
    ),
  examples: [{ description: "Check the lab's tools first", yaml: 'id: tools\nuses: tools.check' }],
  changes: () => [],
  create: (deps) => async (input, ctx) => {
    const lab = await ctx.lab();
    // The tools are asked at once (each is a program's start: seconds for Vagrant's Ruby); a problem is
    // reported for the first tool in the input's order that has one, as when they were asked in turn.
    // A lab of kind existing has no Vagrant to check.
    const wanted = input.tools.filter((tool) => lab.def.tools[tool] !== undefined || tool !== 'vagrant');
    const checked = await Promise.allSettled(wanted.map((tool) => checkTool(lab, tool, deps.toolVersions)));
    const tools: ToolVersion[] = [];
    for (const result of checked) {
      if (result.status === 'rejected') throw result.reason;
      if (result.value) tools.push(result.value);
    }
    const output: ToolsCheckOutput = { tools };
    return output;
  },
});
