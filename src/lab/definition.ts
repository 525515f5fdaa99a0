/**
 * Lab definitions (`labs/<name>.yaml`): which tools the lab actions run, which machines exist and where
 * their files are, and the network values manifests are rendered from. The real lab and the simulated
 * one differ only here.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import { LabConfigError, PlaybookError } from '../errors.js';

const machineSchema = z
  .object({
    role: z.enum(['proxy', 'kubernetes', 'app']).describe('What the machine is for.'),
    ip: z.string().describe('Address on the lab network.'),
    cpus: z.number().int().optional(),
    memory: z.number().int().optional(),
    files: z.record(z.string(), z.string()).default({}).describe('Paths on the machine, by purpose.'),
    sudo: z.boolean().default(true).describe('Read root-only files with `sudo -n`.'),
  })
  .passthrough();

const labSchema = z
  .object({
    name: z.string(),
    description: z.string().optional(),
    tools: z
      .object({ vagrant: z.string(), kubectl: z.string(), istioctl: z.string() })
      .catchall(z.string())
      .describe('Programs the actions run: names on PATH, or paths relative to the lab file.'),
    env: z.record(z.string(), z.string()).default({}).describe('Extra environment for the tools.'),
    vagrant: z
      .object({
        dir: z.string(),
        provider: z.string(),
        box: z.string().optional(),
        boxVersion: z.string().optional(),
        certsDir: z.string().optional(),
      })
      .passthrough(),
    machines: z.record(z.string(), machineSchema),
    network: z
      .object({
        proxyPort: z.number().int(),
        appPort: z.number().int(),
        apiServer: z
          .string()
          .optional()
          .describe("Where the host reaches the API server; unset: where the machine's kubeconfig says."),
      })
      .passthrough(),
    istio: z
      .object({
        version: z.string().regex(/^\d+\.\d+\.\d+$/, 'must be an Istio release such as 1.28.3'),
        sha256: z
          .string()
          .default('')
          .describe('Of istioctl-VERSION-linux-amd64.tar.gz; empty: the published one.'),
      })
      .strict()
      .optional()
      .describe('The Istio release the lab runs: istio.install refuses an istioctl of another version.'),
    sim: z.record(z.string(), z.unknown()).optional(),
  })
  .strict();

export type LabMachine = z.output<typeof machineSchema>;
export type LabDefinitionData = z.output<typeof labSchema>;

export interface LabDefinition extends LabDefinitionData {
  /** Absolute path of the lab file. */
  file: string;
  /** The run's lab state folder that `{state}` stood for. */
  stateDir: string;
  /** Where certificates are generated (absolute). */
  certsDir: string;
}

export function labFile(ref: string, projectRoot: string): string {
  if (ref.includes('/') || /\.ya?ml$/.test(ref)) return path.resolve(ref);
  return path.join(projectRoot, 'labs', `${ref}.yaml`);
}

/**
 * Loads a lab file. `{state}` in any value becomes the run's lab state folder and `{lab}` the lab file's
 * folder; tool paths and folders are resolved relative to the lab file.
 */
export async function loadLab(
  ref: string,
  options: { projectRoot: string; stateDir: string },
): Promise<LabDefinition> {
  const file = labFile(ref, options.projectRoot);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw new PlaybookError([
      { file, line: 0, column: 0, path: '', message: `no such lab definition "${ref}"` },
    ]);
  }
  const dir = path.dirname(file);
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines });
  const located = (at: (string | number)[], message: string) => {
    let node = doc.getIn(at, true) as { range?: [number] } | undefined;
    for (let depth = at.length - 1; !node?.range && depth >= 0; depth--) {
      node = doc.getIn(at.slice(0, depth), true) as { range?: [number] } | undefined;
    }
    const { line, col } = lines.linePos(node?.range?.[0] ?? 0);
    return { file, line, column: col, path: at.join('.'), message };
  };
  if (doc.errors.length > 0) throw new PlaybookError([located([], doc.errors[0]!.message.split('\n')[0]!)]);
  const substituted = substitute(doc.toJS(), { state: options.stateDir, lab: dir });
  const parsed = labSchema.safeParse(substituted);
  if (!parsed.success) {
    throw new PlaybookError(
      parsed.error.issues.map((i) => located(i.path as (string | number)[], i.message)),
    );
  }
  const data = parsed.data;
  const tools = Object.fromEntries(
    Object.entries(data.tools).map(([name, tool]) => [
      name,
      tool.includes('/') ? path.resolve(dir, tool) : tool,
    ]),
  ) as LabDefinitionData['tools'];
  const certsDir = path.resolve(
    dir,
    process.env.TUNNEL_LAB_CERTS_DIR || data.vagrant.certsDir || path.join(options.stateDir, 'certs'),
  );
  return {
    ...data,
    tools,
    vagrant: { ...data.vagrant, dir: path.resolve(dir, data.vagrant.dir) },
    env: { ...data.env, TUNNEL_LAB_CONFIG: file, TUNNEL_LAB_STATE_DIR: options.stateDir },
    file,
    stateDir: options.stateDir,
    certsDir,
  };
}

function substitute(value: unknown, vars: Record<string, string>): unknown {
  if (typeof value === 'string') return value.replace(/\{(state|lab)\}/g, (_, key: string) => vars[key]!);
  if (Array.isArray(value)) return value.map((v) => substitute(v, vars));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substitute(v, vars)]));
  }
  return value;
}

/** The machine with a role (e.g. the one Kubernetes runs on). */
export function machineWithRole(lab: LabDefinition, role: LabMachine['role']): [string, LabMachine] {
  const found = Object.entries(lab.machines).find(([, m]) => m.role === role);
  if (!found) throw new LabConfigError(`no machine of lab ${lab.name} has role ${role} (${lab.file})`);
  return found;
}
