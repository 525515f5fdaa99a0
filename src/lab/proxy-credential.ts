/**
 * The credential a run's tunnels show the lab's proxy on its :3130 listener (envoy/envoy.yaml): a user
 * name and a random password, sent as `Proxy-Authorization: Basic base64(user:password)`. The proxy
 * knows only the password's SHA-1 (the htpasswd `{SHA}` form Envoy's basic_auth filter reads), in the
 * routes file it re-reads when a new one is moved into its folder (envoy/auth-routes.yaml is the one
 * provisioning installs, with no user).
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parse, stringify } from 'yaml';

export interface ProxyCredential {
  user: string;
  password: string;
}

/** A fresh credential: 24 random bytes of password, in URL-safe base64 (no ':' to split on). */
export function newProxyCredential(user: string): ProxyCredential {
  if (!/^[A-Za-z0-9._-]+$/.test(user))
    throw new Error(`proxy user "${user}": use letters, digits, '.', '_' or '-'`);
  return { user, password: randomBytes(24).toString('base64url') };
}

/** The Proxy-Authorization header's value for `credential`. */
export function basicAuthorization(credential: ProxyCredential): string {
  return `Basic ${Buffer.from(`${credential.user}:${credential.password}`).toString('base64')}`;
}

/** The htpasswd line Envoy's basic_auth filter checks a credential against. */
export function htpasswdLine(credential: ProxyCredential): string {
  return `${credential.user}:{SHA}${createHash('sha1').update(credential.password).digest('base64')}`;
}

/** Where a run keeps its proxy credential (0600, in its own folder): manifests name it, never hold it. */
export function proxyCredentialFile(stateDir: string): string {
  return path.join(stateDir, 'secrets', 'proxy-credential.json');
}

/** The run's credential; made on first use, then the same one for every retry and resumed attempt. */
export async function runProxyCredential(stateDir: string, user: string): Promise<ProxyCredential> {
  const file = proxyCredentialFile(stateDir);
  try {
    const kept = JSON.parse(await readFile(file, 'utf8')) as ProxyCredential;
    if (kept.user === user) return kept;
  } catch {
    // None yet (or unreadable): a new one.
  }
  const credential = newProxyCredential(user);
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const next = `${file}.new`;
  await writeFile(next, JSON.stringify(credential), { mode: 0o600 });
  await chmod(next, 0o600);
  await rename(next, file);
  return credential;
}

/**
 * The run's secrets as manifest templates read them (`${{ secrets.NAME }}`), rendered only inside the
 * step that applies or checks them: `proxyAuthorization` once a proxy.credential step made one.
 */
/** Stand-ins for the run's secrets where a listing renders templates before the run has made them. */
export const PLACEHOLDER_SECRETS: Record<string, string> = { proxyAuthorization: "(the run's credential)" };

export async function runSecrets(stateDir: string): Promise<Record<string, string>> {
  try {
    const credential = JSON.parse(await readFile(proxyCredentialFile(stateDir), 'utf8')) as ProxyCredential;
    return { proxyAuthorization: basicAuthorization(credential) };
  } catch {
    return {};
  }
}

type Yaml = Record<string, unknown>;

/**
 * `template` (envoy/auth-routes.yaml) with `credential`'s user let through its CONNECT route: the route's
 * own basic_auth users (typed_per_filter_config), which replace the listener's list of nobody.
 */
export function credentialRoutes(template: string, credential: ProxyCredential): string {
  const doc = parse(template) as { resources?: Yaml[] };
  const routes = (doc.resources?.[0]?.virtual_hosts as Yaml[] | undefined)?.flatMap(
    (vh) => (vh.routes as Yaml[] | undefined) ?? [],
  );
  const connect = routes?.find((r) => (r.match as Yaml | undefined)?.connect_matcher !== undefined);
  if (!connect) throw new Error('the proxy routes template has no CONNECT route (connect_matcher)');
  connect.typed_per_filter_config = {
    'envoy.filters.http.basic_auth': {
      '@type': 'type.googleapis.com/envoy.extensions.filters.http.basic_auth.v3.BasicAuthPerRoute',
      users: { inline_string: htpasswdLine(credential) },
    },
  };
  return stringify(doc);
}
