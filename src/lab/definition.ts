/**
 * Lab definitions (`labs/<name>.yaml`): which tools the lab actions run, which machines exist and where
 * their files are, and the network values manifests are rendered from. The real lab and the simulated
 * one differ only here.
 */
import { existsSync, readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { LabConfigError, PlaybookError } from '../errors.js';
import { unknownName } from '../suggest.js';
import { YamlSource } from '../yaml-source.js';
import { keptLabsDir, runLabDir } from '../state-layout.js';
import { K8S_NAME } from './kube-names.js';

const machineSchema = z
  .object({
    role: z.enum(['proxy', 'kubernetes', 'app']).describe('What the machine is for.'),
    ip: z.string().describe('Address on the lab network.'),
    cpus: z.number().int().optional(),
    memory: z.number().int().optional(),
    files: z
      .record(z.string(), z.string())
      .default({})
      .describe(
        'Paths on the machine, by purpose (e.g. accessLog). On a machine that is a pod (`pod`), a log is what a ' +
          'container writes to its output: the value names that container.',
      ),
    sudo: z.boolean().default(true).describe('Read root-only files with `sudo -n`.'),
    ssh: z
      .object({
        host: z.string().min(1).describe('Where its sshd listens (a name or an address).'),
        port: z.number().int().min(1).max(65535).default(22),
        user: z.string().min(1),
        identityFile: z
          .string()
          .optional()
          .describe(
            'A private key file (a path: ~ and $VARS are expanded); its content never leaves the worker.',
          ),
        agent: z
          .boolean()
          .default(false)
          .describe("Authenticate with the ssh agent at $SSH_AUTH_SOCK (the worker's environment)."),
        hostKey: z
          .string()
          .regex(
            /^(SHA256:[A-Za-z0-9+/]{43}|any)$/,
            'must be a fingerprint as ssh-keygen -lf prints it (SHA256:...), or any',
          )
          .describe(
            "The machine's host key fingerprint (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on it); " +
              'any accepts every key, as `vagrant ssh-config` does for VMs that are rebuilt.',
          ),
      })
      .strict()
      .refine((ssh) => ssh.identityFile || ssh.agent, {
        message: 'names no credential: set identityFile, or agent: true',
      })
      .optional()
      .describe(
        "How to reach the machine's shell on a lab of kind existing (Vagrant labs ask vagrant ssh-config).",
      ),
    pod: z
      .object({
        namespace: z.string().regex(K8S_NAME, 'must be a namespace name: lowercase letters, digits and -'),
        name: z
          .string()
          .regex(
            /^([a-z]+\/)?[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/,
            'must be a pod name, or TYPE/NAME as kubectl logs takes it (e.g. deployment/forward-proxy)',
          )
          .describe('The pod, or TYPE/NAME of what runs it (kubectl logs picks one of its pods).'),
      })
      .strict()
      .optional()
      .describe(
        'On a lab of kind existing, a machine that runs in the cluster: its logs are read with kubectl logs ' +
          '(through the API server, no ssh), and `files` name containers.',
      ),
  })
  .passthrough();

const clusterSchema = z
  .object({
    kubeconfig: z
      .string()
      .min(1)
      .describe(
        'The kubeconfig file to use (one path: ~ and $VARS are expanded, so $KUBECONFIG naming one file works); ' +
          "kubeconfig.fetch copies the context's part of it into the run's folder.",
      ),
    context: z.string().optional().describe("The kubeconfig's context; its current context by default."),
    installIstio: z
      .boolean()
      .default(false)
      .describe(
        'false: istio.install only checks the Istio already installed (version, settings); true: it may install it.',
      ),
  })
  .strict();

const labSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'letters, digits, . _ - (it names a folder)'),
    description: z.string().optional(),
    kind: z
      .enum(['vagrant', 'existing'])
      .default('vagrant')
      .describe(
        'vagrant: the lab is Vagrant machines (real or simulated) that vm.up boots; existing: a cluster and ' +
          "machines that already run, reached through `cluster` and each machine's `ssh`.",
      ),
    lifetime: z
      .enum(['run', 'lab'])
      .default('run')
      .describe(
        "run: `{state}` is the run's own folder, so a simulated lab is new for every run; lab: `{state}` is " +
          '<state root>/labs/<name>/, so its machines and cluster outlive runs as real VMs do.',
      ),
    tools: z
      .object({ vagrant: z.string().optional(), kubectl: z.string(), istioctl: z.string() })
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
      .passthrough()
      .optional()
      .describe('Where Vagrant keeps the machines, and how it boots them (kind vagrant only).'),
    cluster: clusterSchema.optional().describe('The cluster a lab of kind existing drives.'),
    keepObjects: z
      .boolean()
      .optional()
      .describe(
        "Whether what a run applies to the cluster stays after it, for a look (the next run's clean slate " +
          'removes it): by default yes on Vagrant labs, no on kind existing, where the finally steps remove it.',
      ),
    certsDir: z
      .string()
      .optional()
      .describe('Where certs.generate writes (kind existing; a Vagrant lab names it in vagrant.certsDir).'),
    egressGateway: z
      .enum(['shared', 'own'])
      .default('shared')
      .describe(
        "shared: the scenarios tunnel through Istio's egress gateway in istio-system (the demo profile's), " +
          "whose config they change while they run; own: gateway.deploy deploys one for the run in the lab's " +
          "namespace (Istio's gateway injection), so that the run changes nothing outside its namespace.",
      ),
    namespace: z
      .string()
      .regex(K8S_NAME, 'must be a namespace name: lowercase letters, digits and -')
      .default('default')
      .describe(
        'The namespace a scenario runs in: its client pods, their Sidecar policy, ServiceEntries and routes ' +
          "(manifests' values.namespace). On a shared cluster, one of the run's own: kube.namespace creates " +
          'it, and a run that does not keep its objects deletes it at the end.',
      ),
    machines: z.record(z.string(), machineSchema).default({}),
    network: z
      .object({
        proxyPort: z.number().int().describe("The external proxy's TLS listener (envoy/envoy.yaml's :3128)."),
        proxyPlainPort: z
          .number()
          .int()
          .default(3129)
          .describe("The external proxy's plain-text listener (envoy/envoy.yaml's :3129)."),
        proxyAuthPort: z
          .number()
          .int()
          .default(3130)
          .describe(
            "The external proxy's TLS listener that asks for a run's credential (envoy/envoy.yaml's :3130).",
          ),
        appPort: z.number().int(),
        appHttpPort: z
          .number()
          .int()
          .default(80)
          .describe("The external app's plain-HTTP listener (nginx's :80 beside its mutual-TLS :443)."),
        apiServer: z
          .string()
          .optional()
          .describe("Where the host reaches the API server; unset: where the machine's kubeconfig says."),
      })
      .passthrough(),
    istio: z
      .object({
        version: z
          .string()
          .regex(/^\d+\.\d+\.\d+$/, 'must be an Istio release such as 1.28.3')
          .optional()
          .describe(
            'The Istio release the lab runs: istio.install refuses an istioctl of another version, and on a ' +
              'lab of kind existing a cluster whose istiod runs another.',
          ),
        sha256: z
          .string()
          .default('')
          .describe('Of istioctl-VERSION-linux-amd64.tar.gz; empty: the published one.'),
        revision: z
          .string()
          .regex(K8S_NAME, 'must be a revision name: lowercase letters, digits and -')
          .optional()
          .describe(
            'On a lab of kind existing, the Istio revision (istioctl install --revision) the scenarios use: ' +
              'istio.install checks istiod-<revision> and its mesh config istio-<revision>, and kube.namespace ' +
              'asks for sidecars with istio.io/rev=<revision> instead of istio-injection=enabled.',
          ),
      })
      .strict()
      .optional()
      .describe('The Istio the lab runs.'),
    sim: z.record(z.string(), z.unknown()).optional(),
  })
  .strict()
  .superRefine((lab, ctx) => {
    const need = (path: (string | number)[], message: string) =>
      ctx.addIssue({ code: 'custom', path, message });
    if (lab.kind === 'vagrant') {
      for (const [name, machine] of Object.entries(lab.machines)) {
        if (machine.pod)
          need(
            ['machines', name, 'pod'],
            'only a lab of kind existing has machines that are pods of its cluster',
          );
      }
      if (!lab.vagrant) need(['vagrant'], 'a lab of kind vagrant needs a vagrant section (dir, provider)');
      if (!lab.tools.vagrant) need(['tools', 'vagrant'], 'a lab of kind vagrant needs tools.vagrant');
      if (lab.cluster) need(['cluster'], 'only a lab of kind existing names a cluster: set kind: existing');
      return;
    }
    if (!lab.cluster) need(['cluster'], 'a lab of kind existing needs a cluster section (kubeconfig)');
    if (lab.vagrant)
      need(['vagrant'], 'a lab of kind existing has no Vagrant machines: remove the vagrant section');
    for (const [name, machine] of Object.entries(lab.machines)) {
      if (machine.pod && machine.ssh)
        need(
          ['machines', name, 'pod'],
          'a machine is reached either over ssh or as a pod of the cluster: remove ssh or pod',
        );
      if (machine.role === 'kubernetes')
        need(
          ['machines', name, 'role'],
          'a lab of kind existing reaches its cluster through cluster.kubeconfig, not a machine',
        );
    }
  });

export type LabMachine = z.output<typeof machineSchema>;
export type LabDefinitionData = z.output<typeof labSchema>;

export interface LabDefinition extends LabDefinitionData {
  /** Absolute path of the lab file. */
  file: string;
  /** The folder `{state}` stood for: the run's lab folder, or the lab's own with `lifetime: lab`. */
  stateDir: string;
  /** Where certificates are generated (absolute). */
  certsDir: string;
}

/** The lab's Vagrant section; a lab of kind existing has none, and says so. */
export function vagrantOf(def: LabDefinition): NonNullable<LabDefinitionData['vagrant']> {
  if (!def.vagrant) {
    throw new LabConfigError(
      `the lab ${def.name} has no machines of its own (kind: ${def.kind}), so it has no Vagrant (${def.file})`,
    );
  }
  return def.vagrant;
}

/** The name of the egress gateway a lab with `egressGateway: own` deploys: Deployment, Service, account. */
export const OWN_EGRESS_GATEWAY = 'tunnel-lab-egress';

/** Istio's egress gateway of the demo profile (its Deployment and Service), which labs share by default. */
export const SHARED_EGRESS_GATEWAY = { namespace: 'istio-system', service: 'istio-egressgateway' } as const;

/** The egress gateway a lab's scenarios go through: the run's own (see ownEgressGateway), or Istio's shared one. */
export function egressGatewayOf(def: Pick<LabDefinitionData, 'egressGateway' | 'namespace'>): {
  namespace: string;
  service: string;
} {
  return ownEgressGateway(def) ?? SHARED_EGRESS_GATEWAY;
}

/**
 * The egress gateway of the run's own, when the lab asks for one: in the lab's namespace, its pods
 * labelled with a label of their own, so that no gateway config of the shared one (whose EnvoyFilters and
 * Gateways in istio-system select pods of every namespace by label) ever applies to it.
 */
export function ownEgressGateway(
  def: Pick<LabDefinitionData, 'egressGateway' | 'namespace'>,
): { namespace: string; service: string; selector: Record<string, string> } | undefined {
  if (def.egressGateway !== 'own') return undefined;
  return {
    namespace: def.namespace,
    service: OWN_EGRESS_GATEWAY,
    selector: { 'tunnel-lab.io/gateway': OWN_EGRESS_GATEWAY },
  };
}

/**
 * The namespace label that asks Istio to inject sidecars on this lab: the revision's (`istio.io/rev`) when
 * the lab names one, else `istio-injection=enabled`, which the default revision serves.
 */
export function injectionLabel(def: Pick<LabDefinitionData, 'istio'>): [string, string] {
  const revision = def.istio?.revision;
  return revision ? ['istio.io/rev', revision] : ['istio-injection', 'enabled'];
}

/** Whether a run's objects outlive it on this lab (see `keepObjects`). */
export function keepsObjects(def: LabDefinitionData): boolean {
  return def.keepObjects ?? def.kind === 'vagrant';
}

/** The cluster section of a lab of kind existing. */
export function clusterOf(def: LabDefinition): NonNullable<LabDefinitionData['cluster']> {
  if (!def.cluster) throw new LabConfigError(`the lab ${def.name} is not of kind existing (${def.file})`);
  return def.cluster;
}

/**
 * Where the lab lives, as one string that two lab files driving the same machines or the same namespace of
 * the same cluster share: a Vagrant lab's folder; an existing lab's kubeconfig and context, and its
 * namespace when its runs keep to it (egressGateway: own).
 */
export function labPlace(def: LabDefinition): string {
  if (def.vagrant) return def.vagrant.dir;
  const cluster = clusterOf(def);
  const place = `${cluster.kubeconfig}#${cluster.context ?? ''}`;
  // Runs with a gateway of their own change nothing outside their namespace: one lease per namespace.
  return ownEgressGateway(def) ? `${place}/${def.namespace}` : place;
}

/** `~` and `$VAR` / `${VAR}` in a path from a lab file, from the worker's environment. */
export function expandPath(value: string, file: string): string {
  const expanded = value
    .replace(/^~(?=$|\/)/, os.homedir())
    .replace(/\$(?:\{(\w+)\}|(\w+))/g, (_, braced: string | undefined, bare: string | undefined) => {
      const name = (braced ?? bare)!;
      const found = process.env[name];
      if (found === undefined) throw new LabConfigError(`${file} names $${name}, which is not set`);
      return found;
    });
  return path.resolve(path.dirname(file), expanded);
}

export function labFile(ref: string, projectRoot: string): string {
  if (ref.includes('/') || /\.ya?ml$/.test(ref)) return path.resolve(ref);
  return path.join(projectRoot, 'labs', `${ref}.yaml`);
}

export interface LoadLabOptions {
  projectRoot: string;
  /** The run's lab state folder. */
  stateDir: string;
  /** Where labs with `lifetime: lab` keep their state (`<state root>/labs`); without it, stateDir. */
  labsDir?: string;
}

/** Lab files parsed lately, by path and text: every step of a run loads its lab, and parsing is most of it. */
const parsedLabFiles = new Map<string, YamlSource>();
const PARSED_LAB_FILES_KEPT = 16;

/** The parsed lab file; its `value()` is a fresh copy on every call, so no caller sees another's changes. */
function parsedLabFile(file: string, text: string): YamlSource {
  const key = `${file}\0${text}`;
  const kept = parsedLabFiles.get(key);
  if (kept) return kept;
  const source = YamlSource.parse(text, file);
  if (parsedLabFiles.size >= PARSED_LAB_FILES_KEPT)
    parsedLabFiles.delete(parsedLabFiles.keys().next().value!);
  parsedLabFiles.set(key, source);
  return source;
}

/**
 * Loads a lab file. `{state}` in any value becomes the lab's state folder (the run's, or with
 * `lifetime: lab` the lab's own under `labsDir`) and `{lab}` the lab file's folder; tool paths and
 * folders are resolved relative to the lab file.
 */
export async function loadLab(ref: string, options: LoadLabOptions): Promise<LabDefinition> {
  const file = labFile(ref, options.projectRoot);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    const dir = path.join(options.projectRoot, 'labs');
    const known = existsSync(dir)
      ? readdirSync(dir)
          .filter((f) => f.endsWith('.yaml'))
          .map((f) => f.slice(0, -'.yaml'.length))
          .sort()
      : [];
    const message =
      file === path.join(dir, `${ref}.yaml`) ? unknownName('lab', ref, known) : 'no such lab file';
    throw new PlaybookError([{ file, line: 0, column: 0, path: '', message }]);
  }
  const dir = path.dirname(file);
  const source = parsedLabFile(file, text);
  const raw = source.value();
  const invalid = (error: z.ZodError) => new PlaybookError(source.issues(error, [], raw));
  // The name and lifetime decide what `{state}` stands for, so they are read before anything else.
  const identity = z
    .looseObject({ name: labSchema.shape.name, lifetime: labSchema.shape.lifetime })
    .safeParse(raw);
  if (!identity.success) throw invalid(identity.error);
  const stateDir =
    identity.data.lifetime === 'lab' && options.labsDir
      ? path.join(options.labsDir, identity.data.name)
      : options.stateDir;
  const parsed = labSchema.safeParse(substitute(raw, { state: stateDir, lab: dir }));
  if (!parsed.success) throw invalid(parsed.error);
  const data = parsed.data;
  const tools = Object.fromEntries(
    Object.entries(data.tools).map(([name, tool]) => [
      name,
      tool.includes('/') ? path.resolve(dir, tool) : tool,
    ]),
  ) as LabDefinitionData['tools'];
  const certsDir = path.resolve(
    dir,
    process.env.TUNNEL_LAB_CERTS_DIR ||
      data.vagrant?.certsDir ||
      data.certsDir ||
      path.join(stateDir, 'certs'),
  );
  return {
    ...data,
    tools,
    ...(data.vagrant ? { vagrant: { ...data.vagrant, dir: path.resolve(dir, data.vagrant.dir) } } : {}),
    // The lab's own env comes last: a lab of kind existing may point the simulated lab's stand-ins at
    // another lab file and state (test/e2e-existing.test.ts).
    env: { TUNNEL_LAB_CONFIG: file, TUNNEL_LAB_STATE_DIR: stateDir, ...data.env },
    file,
    stateDir,
    certsDir,
  };
}

/** The lab actions drive when neither the run nor the playbook names one: the real VMs. */
export const DEFAULT_LAB = 'vagrant';

/**
 * The lab a run's steps drive (`lab`, or the default), with `{state}` the run's own lab folder under
 * `stateRoot` (or the kept lab's with `lifetime: lab`).
 */
export function loadRunLab(
  { lab }: { lab?: string | undefined },
  deps: { projectRoot: string; stateRoot: string },
  workflowId: string,
): Promise<LabDefinition> {
  return loadLab(lab ?? DEFAULT_LAB, {
    projectRoot: deps.projectRoot,
    stateDir: runLabDir(deps.stateRoot, workflowId),
    labsDir: keptLabsDir(deps.stateRoot),
  });
}

function substitute(value: unknown, vars: Record<string, string>): unknown {
  if (typeof value === 'string') return value.replace(/\{(state|lab)\}/g, (_, key: string) => vars[key]!);
  if (Array.isArray(value)) return value.map((v) => substitute(v, vars));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substitute(v, vars)]));
  }
  return value;
}

/**
 * A file on a machine as steps name it: an absolute path as it is, or a purpose (`accessLog`) that the lab
 * file maps to a path; undefined when the lab names no such machine or file.
 */
export function namedFile(def: LabDefinition, machine: string, file: string): string | undefined {
  return file.startsWith('/') ? file : def.machines[machine]?.files[file];
}

/** The machine with a role (e.g. the one Kubernetes runs on). */
export function machineWithRole(lab: LabDefinition, role: LabMachine['role']): [string, LabMachine] {
  const found = Object.entries(lab.machines).find(([, m]) => m.role === role);
  if (!found) throw new LabConfigError(`no machine of lab ${lab.name} has role ${role} (${lab.file})`);
  return found;
}
