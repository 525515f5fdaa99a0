/**
 * The compose stack for more than one machine, checked without a Docker engine: docker-compose validates
 * the file, and the Dockerfile only copies what the build context has.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { parse } from 'yaml';
import { interpolate, readComposeStack } from '../src/stack/compose.js';
import { serverPorts } from '../src/stack/stack.js';
import { root } from './support/temporal.js';

interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile: string };
  environment?: Record<string, string | null>;
  ports?: unknown[];
  depends_on?: Record<string, { condition: string }>;
}

async function compose(args: string[]) {
  const found = await execa('sh', ['-c', 'command -v docker-compose'], { reject: false });
  if (found.exitCode !== 0) {
    throw new Error(
      'docker-compose is missing: install it with `apt-get install -y --no-install-recommends docker-compose`',
    );
  }
  // A clean environment: the file's own defaults, not whatever the developer has exported.
  return execa('docker-compose', ['-f', path.join(root, 'docker-compose.yml'), ...args], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp' },
    extendEnv: false,
    reject: false,
  });
}

const dockerignore = () =>
  readFileSync(path.join(root, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));

describe('docker-compose.yml', () => {
  let services: Record<string, ComposeService>;

  beforeAll(async () => {
    const config = await compose(['config']);
    expect(config.stderr).toBe('');
    expect(config.exitCode).toBe(0);
    services = (parse(config.stdout) as { services: Record<string, ComposeService> }).services;
  });

  it('is valid for docker-compose', async () => {
    const quiet = await compose(['config', '-q']);
    expect(quiet.stderr).toBe('');
    expect(quiet.exitCode).toBe(0);
  });

  it('has PostgreSQL, the Temporal server, the Web UI and the worker, with pinned images', () => {
    expect(Object.keys(services)).toEqual(
      expect.arrayContaining(['postgresql', 'temporal', 'temporal-ui', 'worker']),
    );
    expect(services.postgresql!.image).toMatch(/^postgres:\d+\.\d+/);
    expect(services.temporal!.image).toMatch(/^temporalio\/(server|auto-setup):\d+\.\d+\.\d+$/);
    expect(services['temporal-ui']!.image).toMatch(/^temporalio\/ui:\d+\.\d+\.\d+$/);
    for (const [name, service] of Object.entries(services)) {
      if (service.image) expect(`${name}: ${service.image}`).not.toMatch(/:latest$|^[^:]+: [^:]+$/);
    }
  });

  it('wires the server to PostgreSQL, and the UI and the worker to the server', () => {
    expect(services.temporal!.environment).toMatchObject({ DB: 'postgres12', POSTGRES_SEEDS: 'postgresql' });
    expect(services.temporal!.ports).toHaveLength(1);
    expect(JSON.stringify(services.temporal!.ports)).toContain('7233');
    expect(services['temporal-ui']!.environment).toMatchObject({ TEMPORAL_ADDRESS: 'temporal:7233' });
    const worker = services.worker!;
    expect(worker.build).toEqual({ context: root, dockerfile: 'Dockerfile' });
    expect(worker.environment).toMatchObject({
      TEMPORAL_ADDRESS: 'temporal:7233',
      TEMPORAL_NAMESPACE: 'default',
      TEMPORAL_TASK_QUEUE: 'tunnel-lab',
      TUNNEL_LAB_HOST: expect.stringMatching(/\S/),
    });
    // Every service that waits on another waits on one that exists.
    for (const service of Object.values(services)) {
      for (const dependency of Object.keys(service.depends_on ?? {}))
        expect(services).toHaveProperty([dependency]);
    }
  });

  it('pins the same versions `tunnel-lab stack` builds (tools/temporal-server, tools/temporal-ui, npm)', async () => {
    const native = await readComposeStack(root);
    const goVersion = (module: string, dependency: string) =>
      new RegExp(`^\\s+${dependency.replace(/\./g, '\\.')} v(\\S+)`, 'm').exec(
        readFileSync(path.join(root, 'tools', module, 'go.mod'), 'utf8'),
      )?.[1];
    expect(goVersion('temporal-server', 'go.temporal.io/server')).toBe(native.temporal.version);
    expect(native.schema.version).toBe(native.temporal.version);
    expect(goVersion('temporal-ui', 'github.com/temporalio/ui-server/v2')).toBe(native.ui.version);
    expect(native.postgresql.version).toMatch(/^\d+\.\d+$/);
    // The native stack runs the compose file's own one-shot scripts, with its host, port and schema folder.
    expect(native.schema.script).toContain('--ep $SQL_HOST -p $SQL_PORT');
    expect(native.schema.environment).toMatchObject({ SQL_HOST: 'postgresql', SQL_PORT: '5432' });
    expect(native.namespace.script).toContain('temporal operator namespace create');
  });

  it('passes TUNNEL_LAB_HOST through to the worker', async () => {
    const config = await execa('docker-compose', ['-f', path.join(root, 'docker-compose.yml'), 'config'], {
      cwd: root,
      env: { TUNNEL_LAB_HOST: 'lab-7' },
      reject: false,
    });
    const parsed = parse(config.stdout) as { services: Record<string, ComposeService> };
    expect(parsed.services.worker!.environment).toMatchObject({ TUNNEL_LAB_HOST: 'lab-7' });
  });
});

describe('Dockerfile', () => {
  const text = readFileSync(path.join(root, 'Dockerfile'), 'utf8');
  const instructions = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .filter((l) => l.trim() && !l.trim().startsWith('#'));

  it('builds from node:20 slim with npm ci and npm run build, and runs the worker', () => {
    const froms = instructions.filter((l) => l.startsWith('FROM '));
    expect(froms.length).toBeGreaterThan(0);
    for (const from of froms) expect(from).toMatch(/^FROM node:20[\w.-]*-slim\b/);
    expect(text).toMatch(/RUN npm ci\b/);
    expect(text).toMatch(/RUN npm run build\b/);
    expect(instructions.at(-1)).toBe('CMD ["node", "dist/src/worker/main.js"]');
  });

  it('copies only what exists in the repository and is not left out by .dockerignore', () => {
    const ignored = dockerignore();
    const copies = instructions.filter((l) => /^(COPY|ADD) /.test(l) && !/--from=/.test(l));
    expect(copies.length).toBeGreaterThan(0);
    for (const copy of copies) {
      const args = copy
        .split(/\s+/)
        .slice(1)
        .filter((a) => !a.startsWith('--'));
      for (const source of args.slice(0, -1)) {
        expect([source, existsSync(path.join(root, source))]).toEqual([source, true]);
        const top = path.normalize(source).split(path.sep)[0]!;
        expect(ignored.includes(top) ? source : 'kept').toBe('kept');
      }
    }
  });

  it('is given a build context without node_modules, dist, .state and .tools', () => {
    expect(dockerignore()).toEqual(expect.arrayContaining(['node_modules', 'dist', '.state', '.tools']));
  });
});

describe('tunnel-lab stack, read from docker-compose.yml', () => {
  it('resolves variables as compose does: ${X:-default}, ${X}, $X, and $$ for a literal $', () => {
    expect(interpolate('${A:-fallback} ${B:-x} $$HOME $C ${D}', { B: 'b', C: 'c' })).toBe(
      'fallback b $HOME c ',
    );
  });

  it("moves the server's ports along with its frontend port, keeping membership ports SMALLINT", () => {
    expect(serverPorts(7233)).toMatchObject({
      FRONTEND_GRPC_PORT: '7233',
      HISTORY_GRPC_PORT: '7234',
      FRONTEND_HTTP_PORT: '7243',
      FRONTEND_MEMBERSHIP_PORT: '6933',
      WORKER_MEMBERSHIP_PORT: '6939',
    });
    expect(() => serverPorts(40_000)).toThrow(/pick 1324-33061/);
    expect(() => serverPorts(1000)).toThrow(/pick 1324-33061/);
  });
});
