/**
 * The Istio oracle: `tools/istio-oracle`, a Go program built from Istio's own module (istiod's config
 * generator, Istio's validation) and Envoy's API definitions (go-control-plane's field rules). Given the
 * manifests a lab applies and how Istio is installed there, it prints the config istiod would send to the
 * client's sidecar and to the egress gateway, what Istio rejects, istiod's push status, what Envoy would
 * NACK, and where each probed host's TLS goes.
 *
 * It is built on first use into `.tools/istio-oracle/<hash>/` (see src/lab/go-tools.ts). The first build
 * downloads about 1.3 GB of Go modules and takes minutes on two cores.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { OracleError } from '../errors.js';
import { ensureGoTools, findGoTools, type GoToolSet } from '../lab/go-tools.js';
import type { MeshVerdict } from './verdict.js';
import { runCommand, type CommandContext } from '../run-command.js';

/** One `curl https://HOST:PORT` from the client pod, or `curl http://HOST:PORT` when plain. */
export interface MeshProbe {
  host: string;
  /** Default: 443, or 80 when plain. */
  port?: number;
  plain?: boolean;
}

/**
 * The probe a string names: a host (`curl https://HOST`), or an `http://` or `https://` URL with no path
 * (plain HTTP, or another port). Undefined for anything else.
 */
export function parseProbe(key: string): MeshProbe | undefined {
  if (!/^[a-z]+:\/\//i.test(key)) return /[/\s:]/.test(key) ? undefined : { host: key };
  let url: URL;
  try {
    url = new URL(key);
  } catch {
    return undefined;
  }
  if (!['http:', 'https:'].includes(url.protocol) || (url.pathname !== '/' && url.pathname !== ''))
    return undefined;
  return {
    host: url.hostname,
    ...(url.port ? { port: Number(url.port) } : {}),
    ...(url.protocol === 'http:' ? { plain: true } : {}),
  };
}

export interface OracleRequest {
  /** Every object applied to the cluster, oldest first, as one YAML stream. */
  manifests: string;
  outboundTrafficPolicy: 'ALLOW_ANY' | 'REGISTRY_ONLY';
  gateway?: {
    namespace: string;
    service: string;
    labels: Record<string, string>;
    ports: { name: string; port: number; targetPort: number }[];
  };
  client?: { pod: string; namespace: string; labels: Record<string, string> };
  probes: MeshProbe[];
}

export interface OracleObject {
  kind: string;
  namespace?: string;
  name: string;
  accepted: boolean;
  errors?: string[];
  warnings?: string[];
}

export interface OracleProxy {
  id: string;
  listeners: {
    name: string;
    address: string;
    chains?: {
      name?: string;
      serverNames?: string[];
      destinationPort?: number;
      cluster?: string;
      tunnelHostname?: string;
      filters: string[];
    }[];
  }[];
  clusters: {
    name: string;
    type: string;
    endpoints?: string[];
    tls?: boolean;
    sni?: string;
    http2?: boolean;
  }[];
  nacks?: string[];
  /** The typed_config types the config uses (without `type.googleapis.com/`). */
  extensions: string[];
}

export type PushStatus = Record<string, Record<string, { proxy?: string; message?: string }>>;

/** One message of Istio's analyzers, as `istioctl analyze` prints it (warnings and errors only). */
export interface OracleFinding {
  code: string;
  level: 'Error' | 'Warning';
  resource?: string;
  message: string;
}

export interface OracleResponse {
  versions: Record<string, string>;
  objects: OracleObject[];
  analysis: OracleFinding[];
  pushStatus: PushStatus;
  proxies: { sidecar: OracleProxy; gateway: OracleProxy };
  verdicts: MeshVerdict[];
}

export interface EnvoyValidation {
  file: string;
  errors: string[];
  warnings: string[];
}

/** The oracle: one program built from tools/istio-oracle. */
export const ORACLE_TOOLS: GoToolSet = {
  name: 'istio-oracle',
  module: 'istio-oracle',
  title: 'the Istio oracle',
  programs: { 'istio-oracle': '.' },
  purpose: 'run the simulated lab without it (its mesh model answers instead)',
  firstBuild: 'minutes',
  error: OracleError,
};

/** The binary if it is built already; never builds. `TUNNEL_LAB_ISTIO_ORACLE` names a prebuilt one. */
export async function findOracle(projectRoot: string): Promise<string | undefined> {
  const prebuilt = process.env.TUNNEL_LAB_ISTIO_ORACLE;
  if (prebuilt) return existsSync(prebuilt) ? prebuilt : undefined;
  const dir = await findGoTools(projectRoot, ORACLE_TOOLS);
  return dir && path.join(dir, 'istio-oracle');
}

/** The binary, built with `go build` when the current sources have none yet. */
export async function ensureOracle(
  projectRoot: string,
  log: (line: string) => void = () => {},
): Promise<string> {
  const prebuilt = process.env.TUNNEL_LAB_ISTIO_ORACLE;
  if (prebuilt) {
    if (!existsSync(prebuilt)) throw new OracleError(`TUNNEL_LAB_ISTIO_ORACLE=${prebuilt} does not exist`);
    return prebuilt;
  }
  return path.join(await ensureGoTools(projectRoot, ORACLE_TOOLS, log), 'istio-oracle');
}

function missing(binary: string): string {
  return `istio-oracle is missing at ${binary} (ensureOracle builds it; TUNNEL_LAB_ISTIO_ORACLE names a prebuilt one)`;
}

/** Runs `istio-oracle mesh` on a request; `command` is the activity's, when an activity runs it. */
export async function runOracle(
  binary: string,
  request: OracleRequest,
  options: { command?: CommandContext; env?: Record<string, string> } = {},
): Promise<OracleResponse> {
  const result = await runCommand(options.command ?? {}, binary, ['mesh'], {
    // istiod's own feature switches (PILOT_*) are read from the environment, as istiod reads them.
    ...(options.env ? { env: options.env } : {}),
    input: JSON.stringify(request),
    notFound: missing(binary),
  });
  if (result.exitCode !== 0) {
    throw new OracleError(
      `istio-oracle mesh failed (exit ${result.exitCode}): ${result.stderr.slice(-2000)}`,
    );
  }
  return JSON.parse(result.stdout) as OracleResponse;
}

/** A pod whose proxy asks istiod for its config: the pod as the API server has it (no pod: not asked). */
export interface XdsProxy {
  pod: string;
  namespace: string;
  ip: string;
  labels: Record<string, string>;
  /** Its Deployment, as the proxy reports it. */
  workload?: string;
}

export interface XdsRequest {
  /** istiod's plain-gRPC xDS address, `host:port`. */
  istiod: string;
  outboundTrafficPolicy: 'ALLOW_ANY' | 'REGISTRY_ONLY';
  sidecar: XdsProxy;
  gateway: XdsProxy;
  /** What the client's DNS answers for in-cluster hosts (Service names to cluster IPs). */
  vips: Record<string, string>;
  probes: MeshProbe[];
  timeoutSeconds?: number;
  /** Add each proxy's listeners as Envoy's JSON (what `istioctl proxy-config listeners -o json` prints). */
  dump?: boolean;
}

export interface XdsResponse {
  proxies: { sidecar: OracleProxy; gateway: OracleProxy };
  verdicts: MeshVerdict[];
  listeners?: { sidecar: unknown[]; gateway: unknown[] };
}

/**
 * Runs `istio-oracle xds`: fetches the config a running istiod sends the client's sidecar and the egress
 * gateway, connecting as each of them, and walks the probes through it as `mesh` walks generated config.
 */
export async function runLiveOracle(
  binary: string,
  request: XdsRequest,
  options: { command?: CommandContext } = {},
): Promise<XdsResponse> {
  const result = await runCommand(options.command ?? {}, binary, ['xds'], {
    input: JSON.stringify(request),
    notFound: missing(binary),
  });
  if (result.exitCode !== 0) {
    throw new OracleError(`istio-oracle xds failed (exit ${result.exitCode}): ${result.stderr.slice(-2000)}`);
  }
  return JSON.parse(result.stdout) as XdsResponse;
}

/** Runs `istio-oracle envoy-validate` on Envoy config files. */
export async function validateEnvoyFiles(binary: string, files: string[]): Promise<EnvoyValidation[]> {
  const result = await runCommand({}, binary, ['envoy-validate', ...files], { notFound: missing(binary) });
  if (result.exitCode !== 0 && result.exitCode !== 1) {
    throw new OracleError(`istio-oracle envoy-validate failed (exit ${result.exitCode}): ${result.stderr}`);
  }
  return JSON.parse(result.stdout) as EnvoyValidation[];
}
