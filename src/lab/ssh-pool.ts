/**
 * A worker's ssh connections to lab machines, shared by the steps that use them: each machine's target
 * (what `vagrant ssh-config` prints) is fetched once, and successive commands run as channels of one ssh2
 * connection instead of a new handshake each. On a real Vagrant lab each `vagrant ssh-config` starts Ruby
 * and costs seconds; each handshake costs a key exchange on both ends.
 *
 * What is kept can go stale: a rebooted machine may get another forwarded port, a dead sshd closes its
 * connections. A connection that closed is dropped and the next use connects again; a connect that fails
 * with a kept target fetches the target again and retries once; the VM actions forget a lab's machines
 * before they change them. A connection idle for `idleMs` is closed, and `close()` ends them all.
 */
import { LabToolError } from '../errors.js';
import type { SshSession, SshTarget } from './ssh.js';

/** How many commands one connection carries at once; sshd's MaxSessions is 10 by default. */
const CHANNELS_PER_CONNECTION = 8;
/** An idle connection is closed after this long. */
const DEFAULT_IDLE_MS = 15_000;

interface Connection {
  key: string;
  session: SshSession;
  /** Commands running on it now. */
  users: number;
  idle?: NodeJS.Timeout;
  closed: boolean;
}

export interface Lease {
  session: SshSession;
  release(): void;
}

export class SshPool {
  private readonly targets = new Map<string, Promise<SshTarget>>();
  private readonly connections = new Map<string, Connection[]>();
  private closing = false;

  constructor(private readonly idleMs = DEFAULT_IDLE_MS) {}

  /**
   * A session to `machine` of the lab whose Vagrant folder is `labKey`, for one command or a few in a row;
   * `fetchTarget` runs `vagrant ssh-config` when the target is not known yet. Release the lease when done.
   */
  async acquire(
    labKey: string,
    machine: string,
    fetchTarget: () => Promise<SshTarget>,
    signal?: AbortSignal,
  ): Promise<Lease> {
    if (this.closing) throw new LabToolError(['ssh', machine], undefined, 'the worker is shutting down');
    const name = `${labKey}\0${machine}`;
    const known = this.targets.has(name);
    try {
      return await this.connect(await this.target(name, fetchTarget), signal);
    } catch (err) {
      if (!known || signal?.aborted) throw err;
      // The machine may have come back elsewhere (another forwarded port, another key): ask vagrant again.
      this.targets.delete(name);
      return this.connect(await this.target(name, fetchTarget), signal);
    }
  }

  /** Forgets the targets of a lab's machines (all when none named) and closes their idle connections. */
  forget(labKey: string, machines?: string[]): void {
    for (const [name, target] of this.targets) {
      const [lab, machine] = name.split('\0');
      if (lab !== labKey || (machines && !machines.includes(machine!))) continue;
      this.targets.delete(name);
      void target.then(
        (t) => {
          for (const connection of this.connections.get(targetKey(t)) ?? []) {
            if (connection.users === 0) this.drop(connection);
            // A busy one is dropped once its commands end: it must not carry new ones.
            else connection.closed = true;
          }
        },
        () => undefined,
      );
    }
  }

  /** Closes every connection; commands still running on one fail as on a dropped connection. */
  close(): void {
    this.closing = true;
    for (const list of this.connections.values()) for (const connection of [...list]) this.drop(connection);
    this.targets.clear();
  }

  /** How many connections are open (for tests). */
  get size(): number {
    let n = 0;
    for (const list of this.connections.values()) n += list.length;
    return n;
  }

  private target(name: string, fetchTarget: () => Promise<SshTarget>): Promise<SshTarget> {
    let target = this.targets.get(name);
    if (!target) {
      target = fetchTarget();
      this.targets.set(name, target);
      // A failed fetch is not kept: the next step asks again.
      target.catch(() => {
        if (this.targets.get(name) === target) this.targets.delete(name);
      });
    }
    return target;
  }

  private async connect(target: SshTarget, signal?: AbortSignal): Promise<Lease> {
    const key = targetKey(target);
    const list = this.connections.get(key) ?? [];
    let connection = list.find((c) => !c.closed && c.users < CHANNELS_PER_CONNECTION);
    if (!connection) {
      // ssh2 is loaded with the first connection, not with the worker that creates the pool.
      const { SshSession } = await import('./ssh.js');
      const session = await SshSession.open(target, signal);
      const opened: Connection = { key, session, users: 0, closed: false };
      session.onClose(() => {
        opened.closed = true;
        this.remove(opened);
      });
      this.connections.set(key, [...(this.connections.get(key) ?? []), opened]);
      if (this.closing) this.drop(opened);
      connection = opened;
    }
    return this.lease(connection);
  }

  private lease(connection: Connection): Lease {
    clearTimeout(connection.idle);
    connection.users++;
    let released = false;
    return {
      session: connection.session,
      release: () => {
        if (released) return;
        released = true;
        connection.users--;
        if (connection.users > 0) return;
        if (connection.closed || this.closing) this.drop(connection);
        else connection.idle = setTimeout(() => this.drop(connection), this.idleMs);
      },
    };
  }

  private drop(connection: Connection): void {
    clearTimeout(connection.idle);
    connection.closed = true;
    this.remove(connection);
    connection.session.close();
  }

  private remove(connection: Connection): void {
    const list = (this.connections.get(connection.key) ?? []).filter((c) => c !== connection);
    if (list.length > 0) this.connections.set(connection.key, list);
    else this.connections.delete(connection.key);
  }
}

/** Connections are shared by what they reach and as whom: address, port, user and key files. */
/** A connection serves only the targets that ask for exactly what it was made with, the host key included. */
function targetKey(target: SshTarget): string {
  return [
    target.host,
    target.port,
    target.user,
    target.hostKey ?? 'any',
    target.agent ?? '',
    ...target.identityFiles,
  ].join('\0');
}
