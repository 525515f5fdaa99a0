/**
 * The simulated lab's stand-in host: one long-lived process per lab that answers the calls of the
 * stand-in kubectl and istioctl, and the vagrant calls that only read (`status`, `ssh-config`, `box
 * list`); sim/lib/standin-host.ts starts and stops it with the lab's machines.
 * A stand-in run as a process of its own costs a Node start and the load of its bundle on every call,
 * about 0.13 s of CPU, and a run makes some thirty of them; through the host a call costs a bash client
 * (sim/lib/standin-client.sh), a loopback connection and the command's own work. The host runs the very
 * code the processes run (sim/kubectl/main.ts, sim/istioctl/main.ts, sim/vagrant/main.ts), with the caller's arguments,
 * environment and working folder (sim/lib/tool-io.ts); a call the host cannot serve (one that reads
 * stdin), or any call while no host answers, runs as a process of its own and behaves the same.
 *
 * Protocol, one call per connection on 127.0.0.1. The client sends NUL-terminated fields: the token from
 * `address`, the tool, the working folder, the argument count, the arguments, its environment as
 * NAME=VALUE fields, and an empty field. The host answers a line `CODE STDERR_BYTES STDOUT_BYTES`, then
 * stderr's bytes, then stdout's, and closes; or the line `retry` (before doing anything) when the caller
 * should run the stand-in as its own process: the build changed since the host started, it is
 * stopping, or it does not serve that command. When the client goes away mid-call, the call's waits end (its signal aborts).
 *
 * Usage: standin-host.cjs DIR (DIR: `<sim state>/standin-host`).
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { istioctl } from './istioctl/main.js';
import { kubectl } from './kubectl/main.js';
import { servedByHost, vagrant } from './vagrant/main.js';
import { abort } from './lib/exit.js';
import { parseHostRequest, type HostRequest } from './lib/standin-host.js';
import { runCall, type ToolMain } from './lib/tool-io.js';

interface HostedTool {
  main: ToolMain;
  errorPrefix: string;
  /** The calls the host answers; the others it sends back to run as processes. All when absent. */
  serves?: (argv: string[]) => boolean;
}

const TOOLS: Record<string, HostedTool> = {
  kubectl: { main: kubectl, errorPrefix: 'error: ' },
  istioctl: { main: istioctl, errorPrefix: 'Error: ' },
  vagrant: { main: vagrant, errorPrefix: 'vagrant (simulated lab): ', serves: servedByHost },
};

/** A request larger than this is no client's: the connection is dropped. */
const MAX_REQUEST_BYTES = 4 * 1024 * 1024;
/** How often the host checks that its address file still names it (removed when the lab stops it). */
const CHECK_MS = 1000;

function main(): void {
  const dir = process.argv[2];
  if (!dir) {
    process.stderr.write('usage: standin-host DIR\n');
    process.exit(2);
  }
  const addressFile = path.join(dir, 'address');
  const token = randomBytes(24).toString('hex');
  const build = fileURLToPath(import.meta.url);
  const builtAt = statSync(build).mtimeMs;
  let stopping = false;
  let active = 0;

  const log = (line: string) => process.stdout.write(`${new Date().toISOString()} ${line}\n`);
  const stop = (why: string) => {
    if (stopping) return;
    stopping = true;
    log(`stopping: ${why}`);
    server.close();
    if (active === 0) process.exit(0);
  };
  const ours = () => {
    try {
      return readFileSync(addressFile, 'utf8').trim().split(' ')[2] === String(process.pid);
    } catch {
      return false;
    }
  };

  const answer = async (socket: net.Socket, request: HostRequest, signal: AbortSignal, startedAt: number) => {
    const tool = TOOLS[request.tool];
    const expected = Buffer.from(token);
    const given = Buffer.from(request.token);
    if (given.length !== expected.length || !timingSafeEqual(given, expected) || !tool) {
      log(`refused a call: ${tool ? 'wrong token' : `unknown tool ${JSON.stringify(request.tool)}`}`);
      socket.destroy();
      return;
    }
    if (stopping || !existsSync(build) || statSync(build).mtimeMs !== builtAt) {
      socket.end('retry\n');
      if (!stopping) stop('the build changed');
      return;
    }
    if (tool.serves && !tool.serves(request.argv)) {
      socket.end('retry\n');
      return;
    }
    active++;
    const started = Date.now();
    // The client sends calls that read stdin to a process of their own; one that slips through fails.
    const stdin = () => abort(`${request.tool}: the simulated lab's stand-in host cannot read stdin`);
    const call = { argv: request.argv, env: request.env, cwd: request.cwd, startedAt, stdin, signal };
    const result = await runCall(tool.main, call, tool.errorPrefix);
    active--;
    // The command only: arguments may carry secrets (`create secret --from-literal`).
    log(`${request.tool} ${result.command ?? '-'} → ${result.code} (${Date.now() - started} ms)`);
    const stderr = Buffer.from(result.stderr);
    const stdout = Buffer.from(result.stdout);
    if (!socket.destroyed) {
      socket.end(
        Buffer.concat([Buffer.from(`${result.code} ${stderr.length} ${stdout.length}\n`), stderr, stdout]),
      );
    }
    if (stopping && active === 0) process.exit(0);
  };

  const server = net.createServer((socket) => {
    const startedAt = Date.now();
    let data = Buffer.alloc(0);
    let received = false;
    const controller = new AbortController();
    socket.on('close', () => controller.abort());
    socket.on('error', () => controller.abort());
    socket.on('data', (chunk) => {
      if (received) return;
      data = Buffer.concat([data, chunk]);
      const request = data.length > MAX_REQUEST_BYTES ? null : parseHostRequest(data);
      if (request === undefined) return;
      received = true;
      if (request === null) {
        log('refused a malformed call');
        socket.destroy();
        return;
      }
      answer(socket, request, controller.signal, startedAt).catch((err: unknown) => {
        log(`call failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
        socket.destroy();
      });
    });
  });
  server.listen(0, '127.0.0.1', () => {
    const { port } = server.address() as net.AddressInfo;
    // Written whole and then renamed: a client never reads half an address.
    const temporary = `${addressFile}.${process.pid}.tmp`;
    writeFileSync(temporary, `${port} ${token} ${process.pid}\n`, { mode: 0o600 });
    renameSync(temporary, addressFile);
    log(`listening on 127.0.0.1:${port}`);
    setInterval(() => {
      if (!ours()) stop('its address file no longer names it');
    }, CHECK_MS);
  });
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  // A stray error of one call must not end the others' host.
  process.on('uncaughtException', (err) => log(`uncaught: ${err.stack ?? err.message}`));
  process.on('unhandledRejection', (err) => log(`unhandled rejection: ${String(err)}`));
}

main();
