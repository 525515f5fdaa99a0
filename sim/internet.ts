/**
 * The simulated lab's internet, as seen from the external proxy: a DNS server on loopback that resolves
 * every public name to one loopback address, and HTTPS sites on that address's port 443 that present a
 * certificate for whatever name the client asks for (signed by the lab's own public CA) and answer 200.
 * The real Envoy of the external proxy resolves CONNECT targets through this DNS server and connects to
 * these sites, so the tunnels it logs are real ones.
 *
 * Usage: node internet.js CONFIG.json, where CONFIG holds { dnsPort, siteIp, dir } (dir keeps the CA and
 * the minted certificates). It runs until killed.
 */
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { selfSigned, signedBy } from './lib/openssl.js';

export interface InternetConfig {
  dnsPort: number;
  siteIp: string;
  dir: string;
  /**
   * The external proxy's Envoy, started as this process's child first of all, so that its start overlaps
   * the CA's and the sites' (it resolves names only when a CONNECT arrives); killed if they fail. Envoy
   * ends itself when its parent process ends, so it needs a parent that stays.
   */
  envoy?: { binary: string; args: string[]; pidFile: string };
}

/** The lab's public CA (what a browser trusts), made once per lab. */
export function publicCa(dir: string): { cert: string; key: string } {
  return { cert: path.join(dir, 'public-ca.crt'), key: path.join(dir, 'public-ca.key') };
}

const NAME = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/;

/** A DNS answer to `query`: an A record with `ip` for a type A question, nothing for any other type. */
export function dnsAnswer(query: Buffer, ip: string): Buffer | undefined {
  if (query.length < 17) return undefined;
  let at = 12;
  const labels: string[] = [];
  while (at < query.length && query[at]! !== 0) {
    const len = query[at]!;
    labels.push(query.subarray(at + 1, at + 1 + len).toString('latin1'));
    at += 1 + len;
  }
  const questionEnd = at + 5;
  if (questionEnd > query.length) return undefined;
  const qtype = query.readUInt16BE(at + 1);
  const header = Buffer.from(query.subarray(0, 12));
  header.writeUInt16BE(0x8180, 2); // response, recursion desired and available, NOERROR
  header.writeUInt16BE(1, 4); // one question
  header.writeUInt16BE(qtype === 1 ? 1 : 0, 6); // answers
  header.writeUInt16BE(0, 8);
  header.writeUInt16BE(0, 10);
  const question = query.subarray(12, questionEnd);
  if (qtype !== 1 || !NAME.test(labels.join('.').toLowerCase())) return Buffer.concat([header, question]);
  const answer = Buffer.alloc(16);
  answer.writeUInt16BE(0xc00c, 0); // the name: a pointer to the question's
  answer.writeUInt16BE(1, 2); // A
  answer.writeUInt16BE(1, 4); // IN
  answer.writeUInt32BE(30, 6); // TTL
  answer.writeUInt16BE(4, 10);
  ip.split('.').forEach((octet, i) => answer.writeUInt8(Number(octet), 12 + i));
  return Buffer.concat([header, question, answer]);
}

async function main(): Promise<void> {
  const config = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as InternetConfig;
  if (config.envoy) startEnvoy(config.envoy);
  await serve(config);
  process.stdout.write('ready\n');
}

/** Starts Envoy as this process's child; it ends with this process, and this process with it. */
function startEnvoy(settings: NonNullable<InternetConfig['envoy']>): void {
  const envoy = spawn(settings.binary, settings.args, { stdio: 'ignore' });
  envoy.on('exit', (code, signal) => {
    process.stderr.write(`envoy exited (${signal ?? code})\n`);
    process.exit(1);
  });
  writeFileSync(settings.pidFile, String(envoy.pid));
  const stop = () => {
    envoy.removeAllListeners('exit');
    envoy.kill('SIGTERM');
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // A failure of this process (the sites cannot start) must not leave Envoy behind.
  process.on('exit', () => {
    if (envoy.exitCode === null && envoy.signalCode === null) envoy.kill('SIGTERM');
  });
}

/** The public CA, the HTTPS sites on port 443 and the DNS server, once they listen. */
async function serve(config: InternetConfig): Promise<void> {
  const ca = publicCa(config.dir);
  mkdirSync(path.join(config.dir, 'sites'), { recursive: true });
  if (!existsSync(ca.cert)) {
    await atomically(ca, (out) =>
      selfSigned({
        subject: '/CN=tunnel-lab simulated public CA',
        days: 30,
        keyOut: out.key,
        certOut: out.cert,
      }),
    );
  }
  const contexts = new Map<string, Promise<tls.SecureContext>>();
  const contextFor = (name: string): Promise<tls.SecureContext> => {
    let context = contexts.get(name);
    if (!context) {
      context = (async () => {
        const base = path.join(config.dir, 'sites', name);
        if (!existsSync(`${base}.crt`)) {
          await atomically({ cert: `${base}.crt`, key: `${base}.key` }, (out) =>
            signedBy(ca, {
              subject: `/CN=${name}`,
              days: 30,
              keyOut: out.key,
              certOut: out.cert,
              csrOut: `${base}.csr`,
              extensions: [`subjectAltName=DNS:${name}`],
            }),
          );
        }
        return tls.createSecureContext({
          key: readFileSync(`${base}.key`),
          cert: readFileSync(`${base}.crt`),
        });
      })();
      contexts.set(name, context);
    }
    return context;
  };
  await contextFor('site.invalid');
  const sites = tls.createServer(
    {
      SNICallback: (servername, callback) => {
        const name = servername.toLowerCase();
        if (!NAME.test(name)) return callback(new Error(`bad server name ${servername}`));
        contextFor(name).then(
          (context) => callback(null, context),
          (err: unknown) => callback(err as Error),
        );
      },
    },
    (socket) => {
      // Answers every request with 200 and keeps the connection open: the client closes it.
      socket.on('data', (request: Buffer) => {
        const host = /^host:\s*(\S+)/im.exec(request.toString('latin1'))?.[1] ?? '';
        const body = `${host}: hello from the simulated internet\n`;
        socket.write(
          `HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: ${body.length}\r\n\r\n${body}`,
        );
      });
      socket.on('error', () => undefined);
    },
  );
  sites.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve, reject) => {
    sites.once('error', reject);
    sites.listen(443, config.siteIp, resolve);
  });
  const dns = dgram.createSocket('udp4');
  dns.on('message', (query, peer) => {
    const answer = dnsAnswer(query, config.siteIp);
    if (answer) dns.send(answer, peer.port, peer.address);
  });
  await new Promise<void>((resolve, reject) => {
    dns.once('error', reject);
    dns.bind(config.dnsPort, '127.0.0.1', resolve);
  });
}

/**
 * Makes a key and certificate under temporary names, then gives them theirs, the certificate last: this
 * process ends with Envoy, perhaps while openssl writes, and the next boot must not find half a certificate.
 */
async function atomically(
  files: { cert: string; key: string },
  make: (out: { cert: string; key: string }) => Promise<void>,
): Promise<void> {
  const out = { cert: `${files.cert}.${process.pid}.tmp`, key: `${files.key}.${process.pid}.tmp` };
  await make(out);
  renameSync(out.key, files.key);
  renameSync(out.cert, files.cert);
}

if (process.argv[1] && path.basename(process.argv[1]).startsWith('internet')) {
  main().catch((err: unknown) => {
    process.stderr.write(`simulated internet: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
