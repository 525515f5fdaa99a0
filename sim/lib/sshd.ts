/**
 * The shells of the simulated machines: one real OpenSSH sshd per lab on 127.0.0.1, with a host key and a
 * user key pair generated at run time under the sim state folder. Every machine's `ssh-config` points at
 * it, as the current user (root in CI).
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { daemonConfig, SSHD, type DaemonRecord } from './machines.js';
import { findProgram, freePort, isOurs, stopTree, waitForPort } from './procs.js';
import { updateState } from './state.js';

const START_ATTEMPTS = 3;
const START_TIMEOUT_MS = 5000;

/** The files of the lab's sshd under `<sim state>/sshd/`. */
export interface SshdFiles {
  dir: string;
  config: string;
  hostKey: string;
  /** The private key `vagrant ssh-config` names as IdentityFile. */
  userKey: string;
  /** Its public half, sshd's AuthorizedKeysFile. */
  userPub: string;
  pidFile: string;
  log: string;
}

/** Where the lab's sshd keeps its config, keys, pid file and log. */
export function sshdFiles(simState: string): SshdFiles {
  const dir = path.join(simState, 'sshd');
  return {
    dir,
    config: daemonConfig(simState, SSHD),
    hostKey: path.join(dir, 'ssh_host_ed25519_key'),
    userKey: path.join(dir, 'id_ed25519'),
    userPub: path.join(dir, 'id_ed25519.pub'),
    pidFile: path.join(dir, 'sshd.pid'),
    log: path.join(dir, 'sshd.log'),
  };
}

/** The user every machine's shell logs in as. */
export function sshUser(): string {
  return os.userInfo().username;
}

async function keygen(file: string, comment: string): Promise<void> {
  if (existsSync(file) && existsSync(`${file}.pub`)) return;
  rmSync(file, { force: true });
  rmSync(`${file}.pub`, { force: true });
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file]);
}

function quote(value: string): string {
  return /\s/.test(value) ? `"${value}"` : value;
}

function renderConfig(files: SshdFiles, port: number): string {
  return [
    '# sshd of the simulated lab: the shells of all its machines, on loopback only.',
    `Port ${port}`,
    'ListenAddress 127.0.0.1',
    `HostKey ${quote(files.hostKey)}`,
    // sshd expands %-tokens in this path (%h, %u): a literal % (a run id's escaped character) is %%.
    `AuthorizedKeysFile ${quote(files.userPub.replace(/%/g, '%%'))}`,
    `PidFile ${quote(files.pidFile)}`,
    `AllowUsers ${sshUser()}`,
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'PermitRootLogin prohibit-password',
    // Without PAM and with the keys in a temp folder, sshd's own checks of owners and modes only get in the way.
    'UsePAM no',
    'StrictModes no',
    'PrintMotd no',
    'Subsystem sftp internal-sftp',
    // The machines' own programs first: the sudo of a Vagrant box (see sudoShim).
    // SHLVL=1: bash reads ~/.bashrc for a command sshd runs only when it is the first shell level, and this
    // host user's rc files (pyenv, toolchains: dozens of processes per command) are not a Vagrant box's,
    // whose ~/.bashrc returns at once for a non-interactive shell.
    `SetEnv ${quote(`PATH=${path.join(files.dir, 'bin')}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`)} SHLVL=1`,
    '',
  ].join('\n');
}

/**
 * The machines' `sudo`: a Vagrant box lets its user run anything as root without a password (`sudo -n`
 * succeeds). The shells already run as the lab's user, so it runs the command as is, and records each
 * call in `<sim state>/sshd/sudo.log` so that a test can see which commands asked for root.
 */
function sudoShim(files: SshdFiles): string {
  return [
    '#!/usr/bin/env bash',
    "# sudo of the simulated lab's machines: passwordless, as on a Vagrant box (see sim/lib/sshd.ts).",
    'set -euo pipefail',
    'while [ "$#" -gt 0 ] && [ "${1#-}" != "$1" ]; do shift; done',
    `printf '%s\\n' "$*" >> ${JSON.stringify(path.join(files.dir, 'sudo.log'))}`,
    'exec "$@"',
    '',
  ].join('\n');
}

/** Starts the lab's sshd unless it runs; returns its port and pid. Safe to call from parallel processes. */
export async function ensureSshd(simState: string): Promise<DaemonRecord> {
  const files = sshdFiles(simState);
  return updateState<Partial<DaemonRecord>, DaemonRecord>(simState, SSHD, {}, async (record) => {
    if (record.pid && record.port && isOurs(record.pid, files.config)) {
      return { port: record.port, pid: record.pid };
    }
    const sshd = findProgram('sshd');
    if (!sshd) throw new Error('sshd not found: install openssh-server (apt-get install openssh-server)');
    mkdirSync(path.join(files.dir, 'bin'), { recursive: true });
    writeFileSync(path.join(files.dir, 'bin', 'sudo'), sudoShim(files), { mode: 0o755 });
    await keygen(files.hostKey, 'tunnel-lab sim host key');
    await keygen(files.userKey, `${sshUser()}@tunnel-lab-sim`);
    try {
      // Privilege separation needs it when sshd runs as root; as any other user it is neither needed nor possible.
      mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
    } catch {
      // Not root.
    }
    let problem = '';
    for (let attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
      const port = await freePort(attempt === 1 ? record.port : undefined);
      writeFileSync(files.config, renderConfig(files, port));
      rmSync(files.pidFile, { force: true });
      writeFileSync(files.log, '');
      // sshd re-executes itself and therefore must be started by its absolute path.
      const started = await execa(sshd, ['-f', files.config, '-E', files.log], {
        reject: false,
        stdin: 'ignore',
      });
      if (started.exitCode !== 0) {
        throw new Error(`sshd did not start: ${(started.stderr || started.stdout).trim()}`);
      }
      // sshd binds after it detached, so a taken port shows only in its log and as a missing pid file.
      const pid = await waitForPidFile(files, port);
      if (pid) {
        Object.assign(record, { port, pid });
        return { port, pid };
      }
      problem = readFileSync(files.log, 'utf8').trim();
    }
    throw new Error(`sshd did not start on 127.0.0.1: ${problem}`);
  });
}

async function waitForPidFile(files: SshdFiles, port: number): Promise<number | undefined> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (existsSync(files.pidFile)) {
      const pid = Number(readFileSync(files.pidFile, 'utf8').trim());
      if (isOurs(pid, files.config)) {
        await waitForPort(port, Math.max(100, deadline - Date.now()));
        return pid;
      }
    }
    if (/Cannot bind any address/.test(readFileSync(files.log, 'utf8'))) return undefined;
    await new Promise((r) => setTimeout(r, 25));
  }
  return undefined;
}

/** Stops the lab's sshd and every session under it. */
export async function stopSshd(simState: string): Promise<void> {
  const files = sshdFiles(simState);
  await updateState<Partial<DaemonRecord>, void>(simState, SSHD, {}, async (record) => {
    await stopTree(record.pid, files.config);
    delete record.pid;
    // The port stays recorded so that the next start prefers it.
  });
}
