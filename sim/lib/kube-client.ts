/**
 * How the stand-in kubectl and istioctl reach "the cluster": like the real clients they load a kubeconfig
 * (the `--kubeconfig` flag, else KUBECONFIG), follow its current context to a cluster's server, and can
 * only talk to the simulated API server, which listens where the lab definition's `network.apiServer` says.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { projectRoot } from '../../src/config.js';
import { proxyListeners, type ProxyFiles, type ProxyListener } from '../mesh/proxy-listeners.js';
import type { LabApp } from '../mesh/types.js';
import { readMachines } from './machines.js';
import { callerPath, toolCall } from './tool-io.js';

interface Kubeconfig {
  'current-context'?: string;
  contexts?: { name?: string; context?: { cluster?: string } }[];
  clusters?: { name?: string; cluster?: { server?: string } }[];
}

const NO_CONFIG =
  'The connection to the server localhost:8080 was refused - did you specify the right host or port?';

/**
 * Checks that a kubeconfig leads to the simulated API server; returns what a real client prints
 * otherwise (kubectl's wording; istioctl wraps it), or undefined when the cluster is reachable.
 */
export function kubeconfigProblem(
  explicit: string | undefined,
  env: NodeJS.ProcessEnv,
  apiServer: string,
): string | undefined {
  const file = explicit || (env.KUBECONFIG ?? '').split(':').find((f) => f && existsSync(callerPath(f)));
  if (!file) return NO_CONFIG;
  if (!existsSync(callerPath(file))) return `stat ${file}: no such file or directory`;
  let config: Kubeconfig;
  try {
    config = (parse(readFileSync(callerPath(file), 'utf8')) ?? {}) as Kubeconfig;
    if (typeof config !== 'object') throw new Error('not a mapping');
  } catch (err) {
    return `error loading config file "${file}": ${(err as Error).message.split('\n')[0]}`;
  }
  const contextName = config['current-context'];
  if (!contextName) return NO_CONFIG;
  const context = config.contexts?.find((c) => c.name === contextName)?.context;
  if (!context) return `context was not found for specified context: ${contextName}`;
  const server = config.clusters?.find((c) => c.name === context.cluster)?.cluster?.server;
  if (!server) return 'cluster has no server defined';
  if (normalize(server) !== normalize(apiServer)) {
    return `Unable to connect to the server: dial tcp ${safeUrl(server)?.host ?? server}: connect: connection refused`;
  }
  return undefined;
}

/** `localhost` and 127.0.0.1 are the same forwarded port (k0s's admin.conf says localhost). */
function normalize(server: string): string {
  const url = safeUrl(server);
  if (!url) return server;
  const host = url.hostname === 'localhost' ? '127.0.0.1' : url.hostname;
  return `${url.protocol}//${host}:${url.port || (url.protocol === 'https:' ? '443' : '80')}`;
}

function safeUrl(text: string): URL | undefined {
  try {
    return new URL(text);
  } catch {
    return undefined;
  }
}

/** The lab machines and ports the cluster side of the sim needs, from the lab definition. */
export interface LabPoints {
  apiServer: string;
  kubernetes?: { name: string; ip: string };
  /** The external proxy, with the listeners of the Envoy config it runs (envoy/envoy.yaml). */
  proxy?: { name: string; ip: string; listeners: ProxyListener[]; accessLog?: string; files?: ProxyFiles };
  /** The external app machine, by name. */
  app?: LabApp & { name: string };
}

interface LabShape {
  machines: Record<string, { role?: string; ip?: string; files?: Record<string, string> }>;
  network?: { apiServer?: string; appPort?: number; appHttpPort?: number };
}

let listeners: ProxyListener[] | undefined;

/** The listeners of envoy/envoy.yaml, the config the lab's proxy runs (read once per process). */
export function labProxyListeners(): ProxyListener[] {
  listeners ??= proxyListeners(readFileSync(path.join(projectRoot(), 'envoy', 'envoy.yaml'), 'utf8'));
  return listeners;
}

/**
 * The proxy machine's routes file as its listeners name it (envoy/envoy.yaml's path on the VM), read
 * where the lab keeps it (`files.authRoutes`) each time a tunnel asks: a run installs its credential there.
 */
function machineFiles(listeners: ProxyListener[], authRoutes: string | undefined): ProxyFiles {
  return (machinePath) => {
    if (!authRoutes || !listeners.some((l) => l.routesFile === machinePath)) return undefined;
    try {
      return readFileSync(authRoutes, 'utf8');
    } catch {
      return undefined;
    }
  };
}

export function labPoints(lab: unknown): LabPoints {
  const shape = lab as LabShape;
  const byRole = (role: string) => Object.entries(shape.machines ?? {}).find(([, m]) => m.role === role);
  const network = shape.network ?? {};
  const points: LabPoints = { apiServer: network.apiServer ?? 'https://127.0.0.1:6443' };
  const k8s = byRole('kubernetes');
  if (k8s) points.kubernetes = { name: k8s[0], ip: k8s[1].ip ?? '' };
  const proxy = byRole('proxy');
  if (proxy) {
    points.proxy = {
      name: proxy[0],
      ip: proxy[1].ip ?? '',
      listeners: labProxyListeners(),
      accessLog: proxy[1].files?.accessLog,
      files: machineFiles(labProxyListeners(), proxy[1].files?.authRoutes),
    };
  }
  const app = byRole('app');
  if (app)
    points.app = {
      name: app[0],
      ip: app[1].ip ?? '',
      port: network.appPort ?? 443,
      httpPort: network.appHttpPort ?? 80,
    };
  return points;
}

/** True when the vagrant stand-in records the machine as running. */
export function machineRunning(simState: string, name: string | undefined): boolean {
  return !!name && readMachines(simState)[name]?.state === 'running';
}

/**
 * Why a client cannot reach the API server, in kubectl's words; undefined when it can: a kubeconfig
 * that leads to the lab's API server, on a Kubernetes machine that runs.
 */
export function clusterProblem(
  simState: string,
  lab: LabPoints,
  kubeconfig: string | undefined,
): string | undefined {
  const problem = kubeconfigProblem(kubeconfig, toolCall().env, lab.apiServer);
  if (problem) return problem;
  if (!machineRunning(simState, lab.kubernetes?.name)) {
    const url = safeUrl(lab.apiServer);
    return `The connection to the server ${url?.host ?? lab.apiServer} was refused - did you specify the right host or port?`;
  }
  return undefined;
}

/** Go's time.ParseDuration for the forms kubectl's `--timeout` takes (`120s`, `5m0s`, `1h`, `0`); ms. */
export function goDuration(text: string): number | undefined {
  if (text === '0') return 0;
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  let rest = text;
  while (rest) {
    const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)/.exec(rest);
    if (!match) return undefined;
    total += Number(match[1]) * units[match[2]!]!;
    rest = rest.slice(match[0].length);
  }
  return total;
}
