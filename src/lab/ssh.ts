/**
 * The machines' shells over ssh2, reached with what `vagrant ssh-config` prints. Private keys are read
 * from the IdentityFile path inside the activity and never leave it.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Client, type ConnectConfig } from 'ssh2';
import { LabToolError } from '../errors.js';

export interface SshTarget {
  host: string;
  port: number;
  user: string;
  identityFiles: string[];
  /** An ssh agent's socket to authenticate with (tried after the identity files). */
  agent?: string;
  /**
   * The host key's fingerprint (`SHA256:<base64>`, as ssh-keygen prints it), or `any`. Unset: any key, as
   * `vagrant ssh-config` says for VMs whose keys change on every rebuild.
   */
  hostKey?: string;
}

/**
 * Parses `vagrant ssh-config NAME...` output: each Host block's target, by its Host name (Vagrant prints one
 * block per machine, named after it).
 */
export function parseSshConfigs(text: string): Map<string, SshTarget> {
  const targets = new Map<string, SshTarget>();
  for (const block of text.split(/^(?=Host\s)/m)) {
    const host = /^Host\s+(\S+)/.exec(block)?.[1];
    if (host) targets.set(host, parseSshConfig(block));
  }
  return targets;
}

/** Parses `vagrant ssh-config NAME` output (the first Host block). */
export function parseSshConfig(text: string): SshTarget {
  const values = new Map<string, string[]>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const match = /^(\S+)\s+(.*)$/.exec(line);
    if (!match) continue;
    const key = match[1]!.toLowerCase();
    if (key === 'host' && values.has('host')) break;
    const value = match[2]!.trim().replace(/^"(.*)"$/, '$1');
    values.set(key, [...(values.get(key) ?? []), value]);
  }
  const one = (key: string) => values.get(key)?.[0];
  const host = one('hostname');
  const port = Number(one('port') ?? 22);
  const user = one('user');
  if (!host || !user || !Number.isInteger(port)) {
    throw new Error(`ssh-config output lacks HostName, User or Port:\n${text.slice(0, 500)}`);
  }
  return { host, port, user, identityFiles: values.get('identityfile') ?? [] };
}

/** Quotes argv for the remote POSIX shell that ssh hands commands to. */
export function shellQuote(argv: string[]): string {
  return argv
    .map((arg) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`))
    .join(' ');
}

export interface RemoteResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * A remote command line that runs argv and ends it (SIGTERM; sudo and timeout pass it on) when the
 * channel closes: closing a channel does not end a command that does not write, such as tail -F on a
 * quiet log, and sshd closes the command's stdin, which a watcher beside it reads until then.
 */
function untilClosed(argv: string[]): string {
  // A background job's stdin is /dev/null unless redirected: the watcher gets the session's stdin as fd 3.
  const script =
    'exec 3<&0; "$@" </dev/null 3<&- & p=$!; { cat <&3 >/dev/null; kill -TERM $p; } >/dev/null 2>&1 & wait $p';
  return shellQuote(['sh', '-c', script, 'sh', ...argv]);
}

export interface StreamOptions {
  signal?: AbortSignal;
  onStderr?: (chunk: string) => void;
  /** Called once the command runs on the machine (its channel is open). */
  onOpen?: () => void;
}

export class SshSession {
  private constructor(
    private readonly client: Client,
    readonly target: SshTarget,
  ) {}

  static async open(target: SshTarget, signal?: AbortSignal): Promise<SshSession> {
    let offered: string | undefined;
    const config: ConnectConfig = {
      host: target.host,
      port: target.port,
      username: target.user,
      readyTimeout: 15_000,
      keepaliveInterval: 5_000,
      keepaliveCountMax: 3,
      hostVerifier: (key: Buffer) => {
        offered = hostKeyFingerprint(key);
        return !target.hostKey || target.hostKey === 'any' || offered === target.hostKey;
      },
    };
    if (target.identityFiles.length > 0 || !target.agent) {
      config.privateKey = await firstReadableKey(target.identityFiles);
    }
    if (target.agent) config.agent = target.agent;
    const client = new Client();
    await new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        client.end();
        reject(signal!.reason instanceof Error ? signal!.reason : new Error('cancelled'));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      client
        .once('ready', () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        })
        .once('error', (err) => {
          signal?.removeEventListener('abort', onAbort);
          reject(
            new LabToolError(
              ['ssh', `${target.user}@${target.host}:${target.port}`],
              undefined,
              offered && target.hostKey && target.hostKey !== 'any' && offered !== target.hostKey
                ? `its host key is ${offered}, not the ${target.hostKey} the lab file names`
                : err.message,
              { cause: err },
            ),
          );
        })
        .connect(config);
    });
    return new SshSession(client, target);
  }

  /** Runs argv (quoted for the remote shell) and collects its output. */
  async run(argv: string[], signal?: AbortSignal): Promise<RemoteResult> {
    let stdout = '';
    let stderr = '';
    const code = await this.stream(argv, (chunk) => (stdout += chunk), {
      ...(signal ? { signal } : {}),
      onStderr: (chunk) => (stderr += chunk),
    });
    return { code, stdout, stderr };
  }

  /**
   * Runs argv, handing stdout to `onData` as it arrives; resolves with the exit code. Abort closes the
   * channel, also when it comes before the channel is open. `onOpen` is called once the command runs.
   */
  stream(argv: string[], onData: (chunk: string) => void, options: StreamOptions = {}): Promise<number> {
    const { signal, onStderr = () => {}, onOpen = () => {} } = options;
    return new Promise((resolve, reject) => {
      // A connection that drops mid-command fails the command (and so the attempt), not just the channel.
      const onConnectionClose = () => reject(new LabToolError(argv, undefined, 'ssh connection closed'));
      this.client.once('close', onConnectionClose);
      this.client.exec(untilClosed(argv), (err, channel) => {
        if (err) {
          this.client.off('close', onConnectionClose);
          reject(new LabToolError(argv, undefined, err.message, { cause: err }));
          return;
        }
        const onAbort = () => channel.close();
        channel.on('data', (data: Buffer) => onData(data.toString('utf8')));
        channel.stderr.on('data', (data: Buffer) => onStderr(data.toString('utf8')));
        channel.once('close', (code: number | null) => {
          signal?.removeEventListener('abort', onAbort);
          this.client.off('close', onConnectionClose);
          resolve(code ?? -1);
        });
        // An abort that came while the channel was opening would otherwise leave the command running on the
        // machine until it ends by itself.
        if (signal?.aborted) onAbort();
        else {
          signal?.addEventListener('abort', onAbort, { once: true });
          onOpen();
        }
      });
    });
  }

  /** Calls `listener` once the connection has closed, whichever end closed it. */
  onClose(listener: () => void): void {
    this.client.once('close', listener);
  }

  close(): void {
    this.client.end();
  }
}

/** A host key's fingerprint as `ssh-keygen -lf` prints it: `SHA256:` and the unpadded base64 of its hash. */
export function hostKeyFingerprint(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
}

async function firstReadableKey(files: string[]): Promise<Buffer> {
  for (const file of files) {
    try {
      return await readFile(file);
    } catch {
      // Vagrant lists candidates; the first that exists is the one it uses.
    }
  }
  throw new LabToolError(
    ['ssh'],
    undefined,
    `none of the identity files can be read: ${files.join(', ') || '(none listed)'}`,
  );
}
