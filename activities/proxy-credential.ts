import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { LabToolError } from '../src/errors.js';
import { namedFile } from '../src/lab/definition.js';
import {
  credentialRoutes,
  proxyCredentialFile,
  runProxyCredential,
  type ProxyCredential,
} from '../src/lab/proxy-credential.js';
import { defineAction, notApplicable } from './action.js';

export const proxyCredentialInput = z
  .object({
    machine: z
      .string()
      .default('external-proxy')
      .describe('The lab machine whose Envoy asks for the credential.'),
    file: z
      .string()
      .default('authRoutes')
      .describe(
        "Where that Envoy reads its credential listener's routes: a file purpose of the machine in the lab " +
          'definition, or an absolute path.',
      ),
    user: z
      .string()
      .regex(/^[A-Za-z0-9._-]+$/, "letters, digits, '.', '_' or '-'")
      .default('tunnel-lab')
      .describe('The user name the tunnels authenticate as.'),
    state: z
      .enum(['present', 'absent'])
      .default('present')
      .describe(
        "present: the run's credential is the one the proxy lets through; absent: the proxy lets nobody " +
          'through again (a `finally` step; nothing to do when this run made no credential).',
      ),
  })
  .strict();

/**
 * Written on the machine as root: the new routes into a hidden file of the watched folder, readable by
 * Envoy's group where the machine has one, then moved over the routes file (Envoy re-reads the folder on
 * the move, and never sees half a file). The content comes as an argument, base64, never as a shell word.
 */
const INSTALL_SCRIPT = [
  'set -e',
  'dir=$(dirname "$1")',
  'tmp="$dir/.routes.$$.new"',
  'printf %s "$2" | base64 -d > "$tmp"',
  'chmod 0640 "$tmp"',
  'chgrp envoy "$tmp" 2>/dev/null || true',
  'mv -f "$tmp" "$1"',
].join('\n');

export interface ProxyCredentialOutput {
  machine: string;
  /** The routes file on the machine. */
  routes: string;
  user?: string;
  /** Where the run keeps the credential (the password never leaves that file). */
  credentialFile?: string;
  state: 'present' | 'absent';
  /** Whether the proxy's routes were written (absent: not when this run had no credential). */
  changed: boolean;
}

/**
 * Installs a credential made for this run on the lab's proxy (envoy/envoy.yaml's :3130 listener), or
 * takes it away again. The password stays in the run's folder; the proxy gets only its SHA-1
 * (htpasswd `{SHA}`), and neither reaches the step's input or output.
 */
export const proxyCredentialAction = defineAction({
  name: 'proxy.credential',
  description:
    "Make a credential for this run and let it through the lab proxy's credential listener (or none again).",
  input: proxyCredentialInput,
  policy: {
    timeout: '1m',
    maxTimeout: '10m',
    heartbeatTimeout: '30s',
    retry: { attempts: 5, initialInterval: '1s', backoff: 2, maxInterval: '10s' },
    maxAttempts: 20,
  },
  idempotent: true,
  summary: (input) =>
    input.state === 'absent'
      ? `proxy.credential: nobody through ${input.machine}:${input.file}`
      : `proxy.credential: ${input.user} through ${input.machine}:${input.file}`,
  examples: [
    {
      description: "Let this run's tunnels through the proxy's credential listener",
      yaml: 'id: credential\nuses: proxy.credential\nwith: { user: tunnel-lab }',
    },
    {
      description: 'Take the credential away when the run ends',
      yaml: 'id: credential-gone\nuses: proxy.credential\nwith: { state: absent }',
    },
  ],
  changes: (input, { lab }) => {
    const file = namedFile(lab, input.machine, input.file);
    if (!file || lab.machines[input.machine]?.pod) return [];
    return input.state === 'present'
      ? [
          `write ${file} on ${input.machine}: the proxy's credential listener lets this run's credential through`,
        ]
      : [
          `write ${file} on ${input.machine}: the proxy's credential listener lets nobody through, if this run made a credential`,
        ];
  },
  create: (deps) => async (input, ctx) => {
    const lab = await ctx.lab();
    if (lab.def.machines[input.machine]?.pod) {
      return notApplicable(
        `machine ${input.machine} of lab ${lab.def.name} is a pod of the cluster, whose files a run does not write: the proxy's credentials are not this run's to make`,
      );
    }
    if (lab.existing && !namedFile(lab.def, input.machine, input.file)) {
      return notApplicable(
        `machine ${input.machine} of lab ${lab.def.name} names no ${input.file} file: the proxy's credentials are not this run's to make`,
      );
    }
    const routes = lab.fileOn(input.machine, input.file);
    const template = await readFile(path.join(deps.projectRoot, 'envoy', 'auth-routes.yaml'), 'utf8');
    let content = template;
    let credential: ProxyCredential | undefined;
    if (input.state === 'present') {
      credential = await runProxyCredential(ctx.stateDir, input.user);
      content = credentialRoutes(template, credential);
    } else if (!existsSync(proxyCredentialFile(ctx.stateDir))) {
      // This run let nobody through (it ended before its credential step, or took it away already).
      return {
        machine: input.machine,
        routes,
        state: input.state,
        changed: false,
      } satisfies ProxyCredentialOutput;
    }
    const argv = [...lab.sudo(input.machine), 'sh', '-c', INSTALL_SCRIPT, 'sh', routes];
    const result = await lab.withSsh(input.machine, (ssh) =>
      ssh.run([...argv, Buffer.from(content).toString('base64')], ctx.signal),
    );
    // The routes' own argument stays out of the error: it names the user and the password's hash.
    if (result.code !== 0) throw new LabToolError([...argv, '<routes>'], result.code, result.stderr.trim());
    // Gone from the run's folder only once the proxy no longer knows it: a failed attempt can try again.
    if (input.state === 'absent') await rm(proxyCredentialFile(ctx.stateDir), { force: true });
    ctx.log.info(
      credential
        ? `${input.machine}: ${routes} lets ${credential.user} through`
        : `${input.machine}: ${routes} lets nobody through`,
    );
    return {
      machine: input.machine,
      routes,
      state: input.state,
      changed: true,
      ...(credential ? { user: credential.user, credentialFile: proxyCredentialFile(ctx.stateDir) } : {}),
    } satisfies ProxyCredentialOutput;
  },
});
