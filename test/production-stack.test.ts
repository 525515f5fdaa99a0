/**
 * docker-compose.yml's production stack run natively (`tunnel-lab stack up`): PostgreSQL, the real
 * Temporal server on it, its Web UI server and the stack's worker. Both playbooks pass on it, the runs'
 * search attributes answer `temporal workflow list --query`, the Web UI shows a run, a run survives
 * PostgreSQL and the server each going away for 20 s, and `stack down` leaves nothing running.
 */
import { mkdtemp, readFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { chromium } from 'playwright-core';
import { findTemporalCli } from '../src/temporal/cli-binary.js';
import { killComponent, serverPorts, stackStatus } from '../src/stack/stack.js';
import { alive } from './support/processes.js';
import { eventually, root, writePlaybook } from './support/temporal.js';

const OUTAGE_MS = 20_000;
const mark = path.join(root, 'test', 'fixtures', 'mark.mjs');
const CHROMIUM = '/usr/bin/chromium';

let stateRoot: string;
let port: number;
let uiPort: number;
let postgresPort: number;
let address: string;

function isFree(p: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(p, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A frontend port whose derived server ports (and the UI's and PostgreSQL's next to it) are all free. */
async function freeBase(): Promise<number> {
  for (let base = 20_000 + (process.pid % 40) * 250; ; base += 250) {
    const ports = [...Object.values(serverPorts(base)).map(Number), base + 20, base + 21];
    if ((await Promise.all(ports.map(isFree))).every(Boolean)) return base;
  }
}

/** The CLI, pointed at the stack like a user would (TEMPORAL_ADDRESS, TEMPORAL_UI_URL). */
function tunnelLab(args: string[]) {
  return execa('node', [path.join(root, 'bin', 'tunnel-lab.js'), ...args], {
    env: {
      TEMPORAL_ADDRESS: address,
      TEMPORAL_UI_URL: `http://127.0.0.1:${uiPort}`,
      TUNNEL_LAB_STATE: stateRoot,
      TUNNEL_LAB_PLAYBOOK_DIRS: os.tmpdir(),
    },
    reject: false,
    all: true,
  });
}

function stack(verb: string, ...more: string[]) {
  return tunnelLab([
    'stack',
    verb,
    ...(verb === 'up'
      ? ['--port', String(port), '--ui-port', String(uiPort), '--postgres-port', String(postgresPort)]
      : []),
    ...more,
  ]);
}

beforeAll(async () => {
  stateRoot = await mkdtemp(path.join(os.tmpdir(), 'tunnel-lab-stack-'));
  port = await freeBase();
  uiPort = port + 20;
  postgresPort = port + 21;
  address = `127.0.0.1:${port}`;
  const up = await stack('up');
  if (up.exitCode !== 0) throw new Error(`stack up failed (exit ${up.exitCode}):\n${up.all}`);
}, 900_000);

afterAll(async () => {
  const before = await stackStatus(stateRoot);
  const down = await stack('down', '--purge');
  expect(down.exitCode).toBe(0);
  // Everything the stack started is gone, children included (each part leads its own process group).
  for (const row of before)
    if (row.pid) expect({ [row.name]: alive(row.pid) }).toEqual({ [row.name]: false });
}, 120_000);

describe('the production stack without Docker', () => {
  it('reports every part running', async () => {
    const status = await stack('status');
    expect(status.exitCode).toBe(0);
    for (const name of ['postgresql', 'temporal', 'ui', 'worker']) {
      expect(status.stdout).toMatch(new RegExp(`^${name}\\s+running\\s+pid \\d+`, 'm'));
    }
    // `up` again starts nothing twice.
    const again = await stack('up');
    expect(again.exitCode).toBe(0);
    expect(again.stdout).toMatch(/temporal: already running/);
  });

  it('runs hello and tls-passthrough on the stack worker; the search attributes find them', async () => {
    for (const [playbook, lab] of [
      ['hello', []],
      ['tls-passthrough', ['--lab', 'sim']],
    ] as const) {
      const result = await tunnelLab(['run', playbook, ...lab, '--no-worker', '--id', `stack-${playbook}`]);
      expect({ playbook, exit: result.exitCode, tail: result.all?.slice(-1500) }).toMatchObject({ exit: 0 });
      expect(result.stdout).toContain(
        `http://127.0.0.1:${uiPort}/namespaces/default/workflows/stack-${playbook}`,
      );
    }
    const temporal = (await findTemporalCli(root))!;
    const listed = await eventually(async () => {
      const list = await execa(temporal, [
        ...['workflow', 'list', '--address', address, '--query', 'TunnelPlaybook="tls-passthrough"'],
      ]);
      return list.stdout.includes('stack-tls-passthrough') ? list.stdout : undefined;
    });
    expect(listed).not.toContain('stack-hello');
  }, 300_000);

  it("serves a run's page in the Web UI", async () => {
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'],
    });
    try {
      const page = await browser.newPage();
      await page.goto(`http://127.0.0.1:${uiPort}/namespaces/default/workflows/stack-hello`);
      await page.getByText('stack-hello').first().waitFor({ timeout: 30_000 });
      await page.getByText('Completed').first().waitFor({ timeout: 30_000 });
    } finally {
      await browser.close();
    }
  }, 60_000);

  it('stops what it started when a part cannot start, and says why (here the Web UI: its port is taken)', async () => {
    const otherState = await mkdtemp(path.join(os.tmpdir(), 'tunnel-lab-stack-'));
    const base = await freeBase();
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(base + 20, '127.0.0.1', resolve));
    try {
      const env = {
        TUNNEL_LAB_STATE: otherState,
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: os.homedir(),
      };
      const up = await execa(
        'node',
        [path.join(root, 'bin', 'tunnel-lab.js'), 'stack', 'up', '--port', String(base)].concat([
          '--ui-port',
          String(base + 20),
          '--postgres-port',
          String(base + 21),
        ]),
        { env, extendEnv: false, reject: false, all: true },
      );
      expect(up.exitCode).toBe(3);
      expect(up.all).toMatch(/ui (exited while starting|was not ready)/);
      expect(up.all).toMatch(/temporal: stopped again/);
      expect(up.all).toMatch(/postgresql: stopped again/);
      for (const row of await stackStatus(otherState)) expect(row).toMatchObject({ running: false });
    } finally {
      taken.close();
      await execa('node', [path.join(root, 'bin', 'tunnel-lab.js'), 'stack', 'down', '--purge'], {
        env: { TUNNEL_LAB_STATE: otherState },
        reject: false,
      });
    }
  }, 180_000);

  it('rides out PostgreSQL and then the server going away for 20 s each mid-run; the CLI exits 0', async () => {
    const marks = path.join(stateRoot, 'outage-marks');
    const file = await writePlaybook(
      'stack-outage',
      [
        'name: stack-outage',
        'steps:',
        `  - { id: first, uses: exec, with: { command: [node, ${mark}, ${marks}, first] } }`,
        `  - { id: nap, uses: exec, retry: { attempts: 3 }, with: { command: [node, ${mark}, ${marks}, nap, '3000'] } }`,
        `  - { id: nap-2, uses: exec, retry: { attempts: 3 }, with: { command: [node, ${mark}, ${marks}, nap-2, '3000'] } }`,
        `  - { id: last, uses: exec, with: { command: [node, ${mark}, ${marks}, last] } }`,
      ].join('\n'),
    );
    const run = tunnelLab(['run', file, '--no-worker']);
    const upAgain = async () => {
      const up = await stack('up');
      if (up.exitCode !== 0) throw new Error(`stack up again: exit ${up.exitCode}\n${up.all}`);
    };
    let output = '';
    let ended = false;
    run.all?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    void run.finally(() => (ended = true));
    const running = (step: string) =>
      eventually(() => {
        if (ended) throw new Error(`the run ended before ${step} ran:\n${output}`);
        return Promise.resolve(new RegExp(`▶ ${step}\\b|${step}\\s+running`).test(output) ? true : undefined);
      }, 60_000);

    await running('nap');
    await killComponent(stateRoot, 'postgresql');
    await sleep(OUTAGE_MS);
    await upAgain();

    await running('nap-2');
    await killComponent(stateRoot, 'temporal');
    await sleep(OUTAGE_MS);
    await upAgain();

    const result = await run;
    expect({ exit: result.exitCode, tail: result.all?.slice(-1500) }).toMatchObject({ exit: 0 });
    expect(result.stdout).toMatch(/stack-outage: passed/);
    // The server's outage is one the CLI saw and said so; PostgreSQL's, the server hid from it.
    expect(result.stdout).toMatch(/Temporal answers again \(after \d+ s\)/);
    const ran = (await readFile(marks, 'utf8')).split('\n').filter(Boolean);
    // The steps around the outages ran once; a nap whose completion the outage lost ran again (it asks
    // for retries), and the run's table shows its attempts.
    expect(ran.filter((m) => m === 'first')).toHaveLength(1);
    expect(ran.filter((m) => m === 'last')).toHaveLength(1);
    // However often a nap ran, the run's table says so in its attempts column.
    for (const nap of ['nap', 'nap-2']) {
      const attempts = new RegExp(`^${nap}\\s+exec\\s+✔ passed\\s+(\\d+)`, 'm').exec(result.stdout)?.[1];
      expect({ nap, attempts: Number(attempts) }).toEqual({
        nap,
        attempts: ran.filter((m) => m === nap).length,
      });
    }
  }, 300_000);
});
