/**
 * The Istio oracle: `tools/istio-oracle`, a Go program built from Istio's own module (istiod's config
 * generator, Istio's validation) and Envoy's API definitions (go-control-plane's field rules). Given the
 * manifests a lab applies and how Istio is installed there, it prints the config istiod would send to the
 * client's sidecar and to the egress gateway, what Istio rejects, istiod's push status, what Envoy would
 * NACK, and where each probed host's TLS goes.
 *
 * It is built on first use into `.tools/istio-oracle/<hash>/` (the hash covers go.mod, go.sum and the
 * Go sources, so a change of either rebuilds it once); the Go build cache makes rebuilds quick. The first
 * build downloads about 1.3 GB of Go modules and takes minutes on two cores.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { OracleError } from '../errors.js';
import type { MeshVerdict } from './verdict.js';

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
  probes: { host: string; port?: number }[];
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

const SOURCE_DIR = ['tools', 'istio-oracle'];

/** The folder of the oracle's Go module. */
export function oracleSourceDir(projectRoot: string): string {
  return path.join(projectRoot, ...SOURCE_DIR);
}

/** A hash of what the binary is built from: go.mod, go.sum and every Go source. */
export async function oracleSourceHash(projectRoot: string): Promise<string> {
  const dir = oracleSourceDir(projectRoot);
  const files = (await readdir(dir))
    .filter((f) => f.endsWith('.go') || f === 'go.mod' || f === 'go.sum')
    .sort();
  const hash = createHash('sha256');
  for (const f of files)
    hash
      .update(f)
      .update('\0')
      .update(await readFile(path.join(dir, f)))
      .update('\0');
  return hash.digest('hex').slice(0, 16);
}

/** Where the binary for the current sources lives (whether built or not). */
export async function oracleBinaryPath(projectRoot: string): Promise<string> {
  if (process.env.TUNNEL_LAB_ISTIO_ORACLE) return process.env.TUNNEL_LAB_ISTIO_ORACLE;
  return path.join(
    projectRoot,
    '.tools',
    'istio-oracle',
    await oracleSourceHash(projectRoot),
    'istio-oracle',
  );
}

/** The binary if it is built already; never builds. */
export async function findOracle(projectRoot: string): Promise<string | undefined> {
  const binary = await oracleBinaryPath(projectRoot);
  return existsSync(binary) ? binary : undefined;
}

/** The binary, built with `go build` when the current sources have none yet. */
export async function ensureOracle(
  projectRoot: string,
  log: (line: string) => void = () => {},
): Promise<string> {
  const binary = await oracleBinaryPath(projectRoot);
  if (existsSync(binary)) return binary;
  if (process.env.TUNNEL_LAB_ISTIO_ORACLE) {
    throw new OracleError(`TUNNEL_LAB_ISTIO_ORACLE=${binary} does not exist`);
  }
  const go = await execa('go', ['version'], { reject: false });
  if (go.exitCode !== 0) {
    throw new OracleError(
      'the Istio oracle needs Go 1.26 or later to build it once (tools/istio-oracle); install Go, or run the ' +
        'simulated lab without it (its mesh model answers instead)',
    );
  }
  log(`building the Istio oracle (tools/istio-oracle) with ${go.stdout.trim()}; minutes the first time...`);
  const started = Date.now();
  const dir = path.dirname(binary);
  await mkdir(dir, { recursive: true });
  const partial = `${binary}.${process.pid}.partial`;
  const build = await execa('go', ['build', '-mod=readonly', '-o', partial, '.'], {
    cwd: oracleSourceDir(projectRoot),
    reject: false,
    all: true,
  });
  if (build.exitCode !== 0 || !existsSync(partial)) {
    await rm(partial, { force: true });
    throw new OracleError(`go build of tools/istio-oracle failed:\n${(build.all ?? '').slice(-3000)}`);
  }
  await rename(partial, binary);
  // Binaries of older sources are 170 MB each; keep only this one.
  const root = path.dirname(dir);
  for (const entry of await readdir(root)) {
    if (path.join(root, entry) !== dir) await rm(path.join(root, entry), { recursive: true, force: true });
  }
  log(`built the Istio oracle in ${((Date.now() - started) / 1000).toFixed(0)} s: ${binary}`);
  return binary;
}

/** Runs `istio-oracle mesh` on a request. */
export async function runOracle(
  binary: string,
  request: OracleRequest,
  options: { signal?: AbortSignal; env?: Record<string, string> } = {},
): Promise<OracleResponse> {
  const result = await execa(binary, ['mesh'], {
    // istiod's own feature switches (PILOT_*) are read from the environment, as istiod reads them.
    env: options.env,
    input: JSON.stringify(request),
    reject: false,
    cancelSignal: options.signal,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (result.exitCode !== 0) {
    throw new OracleError(
      `istio-oracle mesh failed (exit ${result.exitCode}): ${result.stderr.slice(-2000)}`,
    );
  }
  return JSON.parse(result.stdout) as OracleResponse;
}

/** Runs `istio-oracle envoy-validate` on Envoy config files. */
export async function validateEnvoyFiles(binary: string, files: string[]): Promise<EnvoyValidation[]> {
  const result = await execa(binary, ['envoy-validate', ...files], { reject: false });
  if (result.exitCode !== 0 && result.exitCode !== 1) {
    throw new OracleError(`istio-oracle envoy-validate failed (exit ${result.exitCode}): ${result.stderr}`);
  }
  return JSON.parse(result.stdout) as EnvoyValidation[];
}
