/**
 * The simulated external-app: a real nginx on 127.0.0.1 serving HTTPS with mutual TLS, and plain HTTP on
 * a second port, configured like vagrant/provision/external-app.sh configures it on the VM. Provisioning
 * installs the certificates from the lab's certsDir (what certs.generate writes) into the machine's
 * /etc/nginx/tls; until they exist a temporary self-signed pair lets nginx start, and every client then
 * gets 400, as on the VM. A restart serves what was installed: new certificates reach nginx only when the
 * machine is provisioned again.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { daemonConfig, type DaemonRecord } from './machines.js';
import { selfSigned } from './openssl.js';
import { findProgram, freePort, isOurs, stopTree } from './procs.js';
import { updateState } from './state.js';

const START_ATTEMPTS = 3;

/** The DNS name clients use for the app inside the mesh (its ServiceEntry host). */
export const APP_HOST = 'external-app.default.svc.cluster.local';

/** What the app's nginx is built from: the machine's name, address, folders and the lab's certsDir. */
export interface AppOptions {
  simState: string;
  /** The machine's name; also the name of its daemon record (`<sim state>/<name>.json`). */
  name: string;
  ip: string;
  /** The machine's root folder (`{state}/vms/<name>`). */
  vmDir: string;
  accessLog: string;
  /** Where certs.generate writes ca.crt, external-app.crt and external-app.key. */
  certsDir: string;
}

/** The app's daemon record: `port` is its mutual-TLS port, `httpPort` its plain-HTTP port (both on 127.0.0.1). */
export interface AppRecord extends DaemonRecord {
  httpPort: number;
}

/** The running nginx and what its provisioning reported. */
export interface AppStarted extends AppRecord {
  /** What the provisioning printed, line by line. */
  messages: string[];
}

interface TlsFiles {
  ca: string;
  cert: string;
  key: string;
  /** True for the self-signed placeholder that no client holds. */
  temporary: boolean;
}

function nonEmpty(file: string): boolean {
  return existsSync(file) && statSync(file).size > 0;
}

/** The certificate files nginx serves: in the machine's /etc/nginx/tls, as the provision script installs them. */
function installedTls(options: AppOptions): TlsFiles {
  const dir = tlsDir(options);
  return {
    ca: path.join(dir, 'ca.crt'),
    cert: path.join(dir, 'external-app.crt'),
    key: path.join(dir, 'external-app.key'),
    temporary: existsSync(path.join(dir, 'TEMPORARY')),
  };
}

function tlsDir(options: AppOptions): string {
  return path.join(options.vmDir, 'etc', 'nginx', 'tls');
}

/**
 * What vagrant/provision/external-app.sh does with the certificates: copies the lab's from certsDir into
 * the machine's /etc/nginx/tls when all three exist, else makes a temporary self-signed pair there (once).
 * nginx serves what was installed until the machine is provisioned again. Returns what it reports.
 */
export async function installAppCerts(options: AppOptions): Promise<string[]> {
  const lab = ['ca.crt', 'external-app.crt', 'external-app.key'].map((f) => path.join(options.certsDir, f));
  const installed = installedTls(options);
  const dir = tlsDir(options);
  mkdirSync(dir, { recursive: true });
  if (lab.every(nonEmpty)) {
    const [ca, cert, key] = lab as [string, string, string];
    writeFileSync(installed.ca, readFileSync(ca));
    writeFileSync(installed.cert, readFileSync(cert));
    rmSync(installed.key, { force: true });
    writeFileSync(installed.key, readFileSync(key), { mode: 0o600 });
    rmSync(path.join(dir, 'TEMPORARY'), { force: true });
    return [`external-app: using the certificates from ${options.certsDir}`];
  }
  if (nonEmpty(installed.cert) && nonEmpty(installed.key) && nonEmpty(installed.ca)) {
    return [`external-app: no certificates in ${options.certsDir}; keeping the ones installed in ${dir}`];
  }
  await selfSigned({
    subject: '/CN=external-app',
    days: 30,
    extensions: [`subjectAltName=DNS:external-app,IP:${options.ip}`],
    keyOut: installed.key,
    certOut: installed.cert,
  });
  writeFileSync(installed.ca, readFileSync(installed.cert));
  writeFileSync(
    path.join(dir, 'TEMPORARY'),
    `self-signed placeholder; replaced when ${options.certsDir} holds ca.crt, external-app.crt, external-app.key\n`,
  );
  return [
    `external-app: no certificates in ${options.certsDir} yet; generating a temporary self-signed pair`,
  ];
}

function q(value: string): string {
  return `"${value.replace(/[\\"]/g, '\\$&')}"`;
}

function renderConfig(
  options: AppOptions,
  dir: string,
  ports: Omit<AppRecord, 'pid'>,
  tls: TlsFiles,
): string {
  const temp = (name: string) => q(path.join(dir, 'temp', name));
  return `# external-app of the simulated lab: HTTPS with mutual TLS and plain HTTP on loopback (see
# vagrant/provision/external-app.sh).
daemon on;
worker_processes 1;
pid ${q(path.join(dir, 'nginx.pid'))};
error_log ${q(path.join(dir, 'error.log'))} warn;

events {
    worker_connections 64;
}

http {
    client_body_temp_path ${temp('client_body')};
    proxy_temp_path ${temp('proxy')};
    fastcgi_temp_path ${temp('fastcgi')};
    uwsgi_temp_path ${temp('uwsgi')};
    scgi_temp_path ${temp('scgi')};
    access_log off;

    log_format mtls '$remote_addr - [$time_local] "$request" $status $body_bytes_sent '
                    'ssl_client_s_dn="$ssl_client_s_dn" ssl_client_verify=$ssl_client_verify '
                    'sni="$ssl_server_name" "$http_user_agent"';

    server {
        listen 127.0.0.1:${ports.port} ssl default_server;
        server_name external-app ${APP_HOST} ${options.ip};

        ssl_certificate        ${q(tls.cert)};
        ssl_certificate_key    ${q(tls.key)};
        ssl_client_certificate ${q(tls.ca)};
        ssl_verify_client      on;
        ssl_verify_depth       2;
        ssl_protocols          TLSv1.2 TLSv1.3;

        access_log ${q(options.accessLog)} mtls;

        location / {
            default_type text/plain;
            return 200 "external-app: hello $ssl_client_s_dn\\n";
        }
    }

    server {
        listen 127.0.0.1:${ports.httpPort} default_server;
        server_name external-app ${APP_HOST} ${options.ip};

        access_log ${q(options.accessLog)} mtls;

        location / {
            default_type text/plain;
            return 200 "external-app: hello over plain HTTP\\n";
        }
    }
}
`;
}

/** Starts (or restarts) the app's nginx and records `{ port, pid }` in `<sim state>/<name>.json`. */
export async function startApp(options: AppOptions): Promise<AppStarted> {
  const nginx = findProgram('nginx');
  if (!nginx) throw new Error('nginx not found: install nginx-light (apt-get install nginx-light)');
  const config = daemonConfig(options.simState, options.name);
  const dir = path.dirname(config);
  return updateState<Partial<AppRecord>, AppStarted>(options.simState, options.name, {}, async (record) => {
    await stopTree(record.pid, config);
    delete record.pid;
    const messages: string[] = [];
    let tls = installedTls(options);
    if (![tls.ca, tls.cert, tls.key].every(nonEmpty)) {
      messages.push(...(await installAppCerts(options)));
      tls = installedTls(options);
    }
    mkdirSync(path.join(dir, 'temp'), { recursive: true });
    mkdirSync(path.dirname(options.accessLog), { recursive: true });
    let problem = '';
    for (let attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
      const port = await freePort(attempt === 1 ? record.port : undefined);
      let httpPort = await freePort(attempt === 1 ? record.httpPort : undefined);
      while (httpPort === port) httpPort = await freePort();
      writeFileSync(config, renderConfig(options, dir, { port, httpPort }, tls));
      rmSync(path.join(dir, 'nginx.pid'), { force: true });
      const started = await execa(nginx, ['-p', dir, '-e', path.join(dir, 'error.log'), '-c', config], {
        reject: false,
        stdin: 'ignore',
      });
      if (started.exitCode === 0) {
        const pid = Number(readFileSync(path.join(dir, 'nginx.pid'), 'utf8').trim());
        if (isOurs(pid, config)) {
          Object.assign(record, { port, httpPort, pid });
          messages.push(
            tls.temporary
              ? `external-app: nginx serves :${port} with a TEMPORARY certificate; run certs.generate, then provision again`
              : `external-app: nginx serves :${port} with mutual TLS and :${httpPort} in plain HTTP`,
          );
          return { port, httpPort, pid, messages };
        }
      }
      problem = (started.stderr || started.stdout).trim();
      // Only a port taken since we picked it is worth another try.
      if (!/Address already in use/.test(problem)) break;
    }
    throw new Error(`nginx did not start: ${problem}`);
  });
}

/** Stops the app's nginx (the port stays recorded, so that the next start prefers it). */
export async function stopApp(simState: string, name: string): Promise<void> {
  const config = daemonConfig(simState, name);
  await updateState<Partial<DaemonRecord>, void>(simState, name, {}, async (record) => {
    await stopTree(record.pid, config);
    delete record.pid;
  });
}
