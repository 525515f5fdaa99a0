/**
 * What a `curl` in a pod of a lab without containers does once the mesh has decided where its connection
 * goes: shared by the simulated lab's kubectl (the model decides) and the local lab's (istiod's config
 * decides). A tunnel through the lab's proxy goes through the real Envoy when the proxy machine runs
 * one; a request to the lab's app runs the host's curl against the real nginx, with the certificate
 * files the pod mounts from ConfigMaps and Secrets; anything else is answered in curl's words.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { curlOutput, type CurlCall, type CurlResult } from './curl-cli.js';
import { machineRunning, type LabPoints } from './kube-client.js';
import { daemonUp, readDaemon } from './machines.js';
import type { AppRecord } from './nginx.js';
import { runningProxy } from './proxy.js';
import { RESET, tunnelRequest } from './tunnel-client.js';
import type { AppRequest, MeshTunnelRequest } from '../mesh/types.js';
import { toolCall } from './tool-io.js';

/** The file the stand-in kubectl appends every decision of the mesh to, in the sim state folder. */
export const MESH_TRACE = 'mesh-trace.log';

/** Where the mesh sent a request, and what follows from that for curl and the lab's machines. */
export interface PodRequestOutcome extends CurlResult {
  /** Lines the external proxy appends to its access log (when no real Envoy serves the tunnel). */
  proxyLogLines: string[];
  /** Set when the lab's app machine answers: the host's curl runs against its nginx. */
  appRequest?: Omit<AppRequest, 'via'>;
  /** Set when the mesh opens a tunnel to the lab's proxy: the real Envoy, when it runs, decides. */
  tunnelRequest?: MeshTunnelRequest;
  trace: string[];
}

/** A pod as far as reading its mounted files goes. */
export interface PodSpecView {
  metadata: { name: string; namespace?: string };
  spec?: unknown;
}

/** Looks up a ConfigMap or Secret of the pod's namespace. */
export type ObjectLookup = (
  kind: 'ConfigMap' | 'Secret',
  namespace: string,
  name: string,
) => { data?: Record<string, string>; binaryData?: Record<string, string> } | undefined;

export interface DeliverOptions {
  simState: string;
  lab: LabPoints;
  pod: PodSpecView;
  container: string;
  call: CurlCall;
  /** The pod has a sidecar curl does not run in. */
  sidecar: boolean;
  lookup: ObjectLookup;
}

/** Carries out the outcome: the real Envoy, the real nginx, or curl's output for it. */
export async function deliver(
  outcome: PodRequestOutcome,
  options: DeliverOptions,
): Promise<{ stdout: string; stderr: string; exitCode: number }> {
  const { call, simState, lab, pod, container } = options;
  const trace = path.join(simState, MESH_TRACE);
  appendFileSync(
    trace,
    `${new Date().toISOString()} ${pod.metadata.namespace}/${pod.metadata.name}[${container}] curl ${call.url.href}\n` +
      outcome.trace.map((t) => `  ${t}\n`).join(''),
  );
  // Through the real Envoy when the proxy machine runs one: its access log is then Envoy's own.
  const realProxy = outcome.tunnelRequest && !outcome.appRequest ? runningProxy(simState) : undefined;
  if (outcome.tunnelRequest && realProxy) {
    const ask = outcome.tunnelRequest;
    const port = realProxy.ports[ask.port];
    // A port the proxy does not listen on refuses the connection: the mesh resets the client's.
    const result = port
      ? await tunnelRequest({
          proxyPort: port,
          proxyTls: ask.tls,
          protocol: ask.protocol,
          method: ask.method,
          ...(ask.authorization ? { proxyAuthorization: ask.authorization } : {}),
          ...(ask.istioMutualInside ? { istioMutualInside: true } : {}),
          authority: ask.authority,
          host: call.url.hostname,
          insecure: call.insecure,
          publicCa: realProxy.publicCa,
          timeoutMs: (call.maxTime ?? 60) * 1000,
        })
      : RESET;
    appendFileSync(
      trace,
      `  proxy: the real Envoy on 127.0.0.1:${port ?? '-'} (the VM's :${ask.port}) took the ${ask.method} ` +
        `(${ask.tls ? 'TLS' : 'plain text'}, ${ask.protocol}${ask.authorization ? ', with Proxy-Authorization' : ''}): curl exit ${result.exitCode}, HTTP ${result.httpCode}\n`,
    );
    return curlOutput(call, { ...result, remoteIp: outcome.remoteIp });
  }
  if (outcome.tunnelRequest && outcome.appRequest) {
    // The app machine's address is no address of this host: a real Envoy could not connect to it.
    appendFileSync(
      trace,
      `  proxy: a tunnel to the lab's app, which the real Envoy cannot reach here; the model writes its lines\n`,
    );
  }
  if (outcome.proxyLogLines.length > 0 && lab.proxy?.accessLog) {
    mkdirSync(path.dirname(lab.proxy.accessLog), { recursive: true });
    appendFileSync(lab.proxy.accessLog, outcome.proxyLogLines.map((l) => `${l}\n`).join(''));
  }
  if (outcome.appRequest) return appCurl(options, outcome.appRequest);
  return curlOutput(call, outcome);
}

/**
 * Runs the host's curl against the app's real nginx on loopback, with the same arguments: `--connect-to`
 * keeps the URL (SNI, Host) and goes to the nginx port the request reached (mutual TLS or plain HTTP);
 * certificate paths inside the container become temporary files holding the ConfigMap or Secret data the
 * pod mounts there.
 */
async function appCurl(
  options: DeliverOptions,
  request: Omit<AppRequest, 'via'>,
): Promise<{ stdout: string; stderr: string; exitCode: number }> {
  const { call, simState } = options;
  const app = options.lab.app!;
  const record = readDaemon(simState, app.name) as Partial<AppRecord>;
  const port = request.server === 'tls' ? record.port : record.httpPort;
  if (!port || !machineRunning(simState, app.name) || !daemonUp(simState, app.name)) {
    // Through a sidecar the connection is accepted and then reset; without one it is refused.
    return curlOutput(
      call,
      options.sidecar
        ? { exitCode: 35, httpCode: 0, error: 'Recv failure: Connection reset by peer' }
        : {
            exitCode: 7,
            httpCode: 0,
            error: `Failed to connect to ${request.host} port ${request.port} after 1 ms: Couldn't connect to server`,
          },
    );
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tunnel-lab-sim-pod-'));
  try {
    const mapped = new Map<string, string>();
    for (const containerPath of Object.values(call.files)) {
      if (!containerPath || mapped.has(containerPath)) continue;
      const local = path.join(dir, String(mapped.size), path.basename(containerPath));
      const content = containerFile(options.pod, options.container, containerPath, options.lookup);
      if (content !== undefined) {
        mkdirSync(path.dirname(local), { recursive: true });
        await writeFile(local, content, { mode: 0o600 });
      }
      mapped.set(containerPath, local);
    }
    const args = mapFileArgs(call.args, mapped);
    const result = await execa(
      'curl',
      [...args, '--connect-to', `${request.host}:${request.port}:127.0.0.1:${port}`],
      {
        reject: false,
        // The caller's environment, whether this runs as the caller's own process or in the stand-in host.
        env: toolCall().env,
        extendEnv: false,
        cancelSignal: toolCall().signal,
        timeout: ((call.maxTime ?? 60) + 5) * 1000,
        stripFinalNewline: false,
      },
    );
    let stderr = result.stderr;
    for (const [containerPath, local] of mapped) stderr = stderr.split(local).join(containerPath);
    return { stdout: result.stdout, stderr, exitCode: result.exitCode ?? 1 };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function mapFileArgs(args: string[], mapped: Map<string, string>): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (['--cert', '-E', '--key', '--cacert'].includes(arg) && i + 1 < args.length) {
      out.push(arg, mapped.get(args[i + 1]!) ?? args[i + 1]!);
      i++;
    } else if (/^-[a-zA-Z]*E./.test(arg) && !arg.startsWith('--')) {
      const at = arg.indexOf('E');
      out.push(arg.slice(0, at + 1) + (mapped.get(arg.slice(at + 1)) ?? arg.slice(at + 1)));
    } else {
      out.push(arg);
    }
  }
  return out;
}

/** The content of a file in a container: the ConfigMap or Secret key its volume mount exposes there. */
export function containerFile(
  pod: PodSpecView,
  container: string,
  file: string,
  lookup: ObjectLookup,
): string | undefined {
  const spec = (pod.spec ?? {}) as {
    containers?: { name: string; volumeMounts?: { name: string; mountPath: string; subPath?: string }[] }[];
    volumes?: Record<string, Record<string, unknown>>[];
  };
  const mounts = spec.containers?.find((c) => c.name === container)?.volumeMounts ?? [];
  for (const mount of mounts) {
    const base = mount.mountPath.replace(/\/$/, '');
    let key: string | undefined;
    if (mount.subPath) key = file === base ? mount.subPath : undefined;
    else if (file.startsWith(`${base}/`)) key = file.slice(base.length + 1);
    if (!key) continue;
    const volume = spec.volumes?.find((v) => (v.name as unknown) === mount.name);
    const source = volume?.configMap ?? volume?.secret;
    if (!source) continue;
    const items = (source.items ?? []) as { key: string; path: string }[];
    const dataKey = items.length > 0 ? items.find((item) => item.path === key)?.key : key;
    if (!dataKey) return undefined;
    const namespace = pod.metadata.namespace ?? 'default';
    if (volume!.configMap) {
      const cm = lookup('ConfigMap', namespace, String(source.name));
      const data = cm?.data ?? {};
      const binary = cm?.binaryData ?? {};
      return (
        data[dataKey] ??
        (binary[dataKey] ? Buffer.from(binary[dataKey], 'base64').toString('utf8') : undefined)
      );
    }
    const secret = lookup('Secret', namespace, String(source.secretName));
    const data = secret?.data ?? {};
    return data[dataKey] === undefined ? undefined : Buffer.from(data[dataKey], 'base64').toString('utf8');
  }
  return undefined;
}
