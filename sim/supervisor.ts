/**
 * One process tree for a daemon of the local lab made of real programs, e.g. the Kubernetes control
 * plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, KWOK) or istiod: the programs
 * start in order, each once the one before it answers. If any of them ends, the others are stopped and
 * this process exits 1, so half a daemon never lingers; SIGTERM stops them all (last started, first
 * stopped) and exits 0.
 *
 * Usage: node supervisor.js CONFIG.json (see SupervisorConfig). Prints `ready` once all run, or
 * `NAME: <reason>` on stderr when it gives up. Started and stopped by sim/lib/supervised.ts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { waitForPort } from './lib/procs.js';

export interface SupervisedProcess {
  name: string;
  binary: string;
  args: string[];
  /** Set in its environment, beside what the supervisor has. */
  env?: Record<string, string>;
  /** Ready when this loopback port accepts connections, or when this URL answers 200. */
  ready: { port: number } | { url: string };
}

export interface SupervisorConfig {
  /** What the programs make up together, for messages (e.g. `control plane`). */
  name: string;
  dir: string;
  /** For HTTPS readiness checks: the CA and a client certificate the server trusts. */
  tls?: { ca: string; cert: string; key: string };
  processes: SupervisedProcess[];
}

function get(url: string, tls: SupervisorConfig['tls']): Promise<number> {
  return new Promise((resolve) => {
    const options = tls
      ? { ca: readFileSync(tls.ca), cert: readFileSync(tls.cert), key: readFileSync(tls.key), timeout: 2000 }
      : { timeout: 2000 };
    const request = (url.startsWith('https:') ? https : http).get(url, options, (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    request.on('error', () => resolve(0));
    request.on('timeout', () => request.destroy());
  });
}

async function waitReady(
  process_: SupervisedProcess,
  child: ChildProcess,
  config: SupervisorConfig,
): Promise<void> {
  const deadline = Date.now() + 60_000;
  const ready = process_.ready;
  if ('port' in ready) {
    await waitForPort(ready.port, 60_000);
    return;
  }
  while ((await get(ready.url, config.tls)) !== 200) {
    if (child.exitCode !== null || child.signalCode !== null) return;
    if (Date.now() > deadline) throw new Error(`${process_.name} did not answer ${ready.url} within 60 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function main(): Promise<void> {
  const config = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as SupervisorConfig;
  const children: { name: string; child: ChildProcess }[] = [];
  let stopping = false;
  const stopAll = async (code: number) => {
    stopping = true;
    for (const { child } of [...children].reverse()) {
      if (child.exitCode !== null || child.signalCode !== null) continue;
      child.kill('SIGTERM');
      const ended = new Promise((r) => child.once('exit', r));
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await ended;
      clearTimeout(timer);
    }
    process.exit(code);
  };
  process.on('SIGTERM', () => void stopAll(0));
  process.on('SIGINT', () => void stopAll(0));
  for (const p of config.processes) {
    const log = openSync(path.join(config.dir, `${p.name}.log`), 'a');
    const child = spawn(p.binary, p.args, {
      cwd: config.dir,
      env: { ...process.env, ...p.env },
      stdio: ['ignore', log, log],
    });
    children.push({ name: p.name, child });
    child.on('exit', (code, signal) => {
      if (stopping) return;
      process.stderr.write(
        `${config.name}: ${p.name} exited (${signal ?? `exit ${code}`}); see ${path.join(config.dir, `${p.name}.log`)}\n`,
      );
      void stopAll(1);
    });
    try {
      await waitReady(p, child, config);
    } catch (err) {
      process.stderr.write(`${config.name}: ${err instanceof Error ? err.message : String(err)}\n`);
      await stopAll(1);
    }
  }
  process.stdout.write('ready\n');
}

if (process.argv[1] && path.basename(process.argv[1]).startsWith('supervisor')) {
  main().catch((err: unknown) => {
    process.stderr.write(`supervisor: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
