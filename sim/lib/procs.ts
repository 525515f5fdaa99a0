/**
 * Process helpers for the daemons the simulated machines run (sshd, nginx): free loopback ports, finding
 * system programs, and stopping exactly the processes a stand-in started (by pid, checked against the
 * command line that started them), never anything found by name.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';

const SYSTEM_DIRS = ['/usr/sbin', '/usr/local/sbin', '/sbin'];

/** Absolute path of a program: on PATH or in the sbin folders, which non-root PATHs often lack. */
export function findProgram(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean), ...SYSTEM_DIRS];
  for (const dir of dirs) {
    const candidate = path.join(dir, name);
    if (existsSync(candidate)) return path.resolve(candidate);
  }
  return undefined;
}

/** True when `port` on `host` (127.0.0.1 by default) can be bound right now, by this process. */
export function portIsFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

/** A loopback port that is free now: `preferred` when it still is, else one the kernel picks. */
export async function freePort(preferred?: number): Promise<number> {
  if (preferred && (await portIsFree(preferred))) return preferred;
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once something accepts connections on 127.0.0.1:`port`, or rejects after `timeoutMs`. */
export async function waitForPort(port: number, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** True while `pid` runs; a zombie (ended, not yet reaped by a parent that is not us) counts as ended. */
export function isAlive(pid: number | undefined): boolean {
  if (!pid || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: the pid exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
}

function cmdline(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return undefined;
  }
}

/**
 * True when `pid` runs and its command line contains `marker` (e.g. its generated config file), so a
 * recycled pid is never mistaken for our daemon. Without /proc the pid alone has to do.
 */
export function isOurs(pid: number | undefined, marker: string): boolean {
  if (!isAlive(pid)) return false;
  if (!existsSync('/proc/self/cmdline')) return true;
  const line = cmdline(pid!);
  return line !== undefined && line.includes(marker);
}

/** Every descendant of `pid` (children first found, then theirs), read from /proc. */
export function descendants(pid: number): number[] {
  let entries: string[];
  try {
    entries = readdirSync('/proc').filter((e) => /^\d+$/.test(e));
  } catch {
    return [];
  }
  const children = new Map<number, number[]>();
  for (const entry of entries) {
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // The command name in parentheses may itself contain spaces and parentheses.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      // The process ended while we looked.
    }
  }
  const found: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    for (const child of children.get(queue.shift()!) ?? []) {
      found.push(child);
      queue.push(child);
    }
  }
  return found;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // Already gone.
  }
}

/**
 * Stops a daemon we started and every process under it (sshd's per-connection processes detach into
 * their own sessions, so a process group would miss them): SIGTERM, then SIGKILL after `graceMs`.
 * Does nothing when `pid` is not ours any more.
 */
export async function stopTree(pid: number | undefined, marker: string, graceMs = 3000): Promise<void> {
  if (!pid || !isOurs(pid, marker)) return;
  const all = [pid, ...descendants(pid)];
  for (const p of all) signal(p, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (all.some(isAlive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
  for (const p of all) if (isAlive(p)) signal(p, 'SIGKILL');
  while (all.some(isAlive) && Date.now() < deadline + 1000) await new Promise((r) => setTimeout(r, 25));
}
