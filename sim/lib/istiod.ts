/**
 * istiod of the local lab: the real `pilot-discovery` (built from the Istio module the oracle pins, see
 * src/lab/kube-tools.ts) watching the lab's real API server, run under the supervisor as the process
 * behind the `istiod` pod that KWOK plays. Its ports are loopback ones of its own: xDS in plain gRPC
 * (15010 in a cluster) and the debug/readiness HTTP server (15014); the proxies whose config the lab
 * walks fetch it over xDS (`istio-oracle xds`).
 *
 * Its mesh config is what `istioctl install` would put into the `istio` ConfigMap; istiod reads it from
 * a file and restarts to take a new one, as a real istiod restarts after `istioctl install` changes it.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import { projectRoot } from '../../src/config.js';
import { ensureGoTools } from '../../src/lab/go-tools.js';
import { ISTIOD_TOOLS } from '../../src/lab/kube-tools.js';
import { freePort } from './procs.js';
import { readState } from './state.js';
import { runningSupervised, startSupervised, stopSupervised, type SupervisedRecord } from './supervised.js';

/** The state file name of istiod's record. */
export const ISTIOD = 'istiod';

/** `<sim state>/istiod.json`. */
export interface IstiodRecord extends SupervisedRecord {
  /** xDS over plain gRPC on 127.0.0.1. */
  grpcPort: number;
  /** Readiness and /debug on 127.0.0.1. */
  httpPort: number;
  /** The mesh config it runs with (MeshConfig's YAML fields). */
  mesh: MeshConfig;
  /** Where pilot-discovery and Istio's CRDs are. */
  tools: string;
}

/** Istio's MeshConfig as YAML data (what `istioctl install --set meshConfig.*` sets). */
export type MeshConfig = Record<string, unknown>;

/** The mesh's outbound traffic policy mode; ALLOW_ANY unless set. */
export function outboundPolicyOf(mesh: MeshConfig): 'ALLOW_ANY' | 'REGISTRY_ONLY' {
  const mode = (mesh.outboundTrafficPolicy as { mode?: string } | undefined)?.mode;
  return mode === 'REGISTRY_ONLY' ? 'REGISTRY_ONLY' : 'ALLOW_ANY';
}

export interface IstiodOptions {
  simState: string;
  /** The admin kubeconfig of the lab's API server. */
  kubeconfig: string;
  mesh: MeshConfig;
  /** istiod's own feature switches (PILOT_*), as its Deployment's env would set them. */
  env?: Record<string, string>;
  log?: (line: string) => void;
}

export function istiodDir(simState: string): string {
  return path.join(simState, 'istiod');
}

/** The record of a running istiod, else undefined. */
export function runningIstiod(simState: string): IstiodRecord | undefined {
  return runningSupervised<IstiodRecord>(simState, ISTIOD);
}

/** Starts istiod (stopping an earlier one first) and waits until it reports ready. */
export async function startIstiod(options: IstiodOptions): Promise<IstiodRecord> {
  const tools = await ensureGoTools(projectRoot(), ISTIOD_TOOLS, options.log);
  const dir = istiodDir(options.simState);
  mkdirSync(dir, { recursive: true });
  const meshFile = path.join(dir, 'mesh.yaml');
  writeFileSync(meshFile, stringify(options.mesh));
  const grpcPort = await freePort();
  const httpPort = await freePort();
  return startSupervised<IstiodRecord>(
    options.simState,
    ISTIOD,
    {
      name: 'istiod',
      dir,
      processes: [
        {
          name: 'pilot-discovery',
          binary: path.join(tools, 'pilot-discovery'),
          env: { POD_NAMESPACE: 'istio-system', ...options.env },
          args: [
            'discovery',
            `--kubeconfig=${options.kubeconfig}`,
            `--meshConfig=${meshFile}`,
            '--domain=cluster.local',
            `--grpcAddr=127.0.0.1:${grpcPort}`,
            `--httpAddr=127.0.0.1:${httpPort}`,
            // Not served here: the proxies the lab walks fetch plain xDS, and no kubelet runs agents.
            '--secureGRPCAddr=',
            '--httpsAddr=',
            '--monitoringAddr=',
          ],
          ready: { url: `http://127.0.0.1:${httpPort}/ready` },
        },
      ],
    },
    { grpcPort, httpPort, mesh: options.mesh, tools },
  );
}

/**
 * Starts istiod again after its machine restarted, as its Deployment's pod would be, with the mesh
 * config it last ran with; does nothing where Istio was never installed.
 */
export async function restartIstiod(simState: string, kubeconfig: string): Promise<IstiodRecord | undefined> {
  const last = readState<Partial<IstiodRecord>>(simState, ISTIOD, {});
  if (!last.mesh) return undefined;
  return startIstiod({ simState, kubeconfig, mesh: last.mesh });
}

/** Stops istiod. */
export async function stopIstiod(simState: string): Promise<void> {
  await stopSupervised(simState, ISTIOD);
}
