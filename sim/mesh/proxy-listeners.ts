/**
 * What the lab's external proxy serves, read from the Envoy config it runs (envoy/envoy.yaml), and what it
 * does with a tunnel the mesh opens to it. The simulated lab asks the real Envoy when it runs one; where it
 * cannot (port 443 not bindable), this answer stands in, and `test/envoy-proxy.test.ts` holds it to the
 * real Envoy, combination by combination.
 */
import { createHash } from 'node:crypto';
import { parse } from 'yaml';
import { publicAddress } from './registry.js';
import { isIp, splitHostPort } from './values.js';

export interface ProxyListener {
  name: string;
  /** The port in the config: the VM's port. */
  port: number;
  /** A TLS transport socket on its filter chain. */
  tls: boolean;
  /** HTTP/2 is accepted (over TLS: offered by ALPN; in plain text: prior knowledge) with CONNECT allowed. */
  http2: boolean;
  /** The HTTP methods its routes tunnel: CONNECT when a route has a connect_matcher. */
  methods: string[];
  /**
   * Routes read from a file on the proxy machine (file-based RDS) rather than written in the config: the
   * methods and the users then come from that file as it is when a tunnel asks.
   */
  routesFile?: string;
  /** A Basic credential in this request header (lower case) is required: Envoy's basic_auth filter. */
  authHeader?: string;
}

/** The proxy machine's files a listener reads at run time (its routes file), by their path on the machine. */
export type ProxyFiles = (machinePath: string) => string | undefined;

/** How the mesh opens a tunnel: to which port, over TLS or not, with which HTTP version and method. */
export interface TunnelAsk {
  port: number;
  tls: boolean;
  protocol: string;
  method: string;
  /** The Proxy-Authorization header the tunnel sends (`Basic …`), if any. */
  authorization?: string;
}

/** What the proxy does with it; `logged` is the access-log line's status and flags when it writes one. */
export type ProxyAnswer =
  { served: true } | { served: false; reason: string; logged?: { status: number; flags: string } };

type Yaml = Record<string, unknown>;

const asList = (value: unknown): Yaml[] => (Array.isArray(value) ? (value as Yaml[]) : []);
const asMap = (value: unknown): Yaml =>
  value && typeof value === 'object' && !Array.isArray(value) ? (value as Yaml) : {};

/** The listeners of an Envoy bootstrap's static resources, as far as tunnels are concerned. */
export function proxyListeners(envoyYaml: string): ProxyListener[] {
  const doc = asMap(parse(envoyYaml));
  return asList(asMap(doc.static_resources).listeners).map((listener) => {
    const chain = asList(listener.filter_chains)[0] ?? {};
    const tlsContext = asMap(asMap(asMap(chain.transport_socket).typed_config).common_tls_context);
    const hcm = asMap(
      asList(chain.filters).find((f) => f.name === 'envoy.filters.network.http_connection_manager')
        ?.typed_config,
    );
    const alpn = asList(tlsContext.alpn_protocols) as unknown as string[];
    const tls = chain.transport_socket !== undefined;
    const allowConnect = asMap(hcm.http2_protocol_options).allow_connect === true;
    const codec = typeof hcm.codec_type === 'string' ? hcm.codec_type : 'AUTO';
    const routesFile = asMap(asMap(asMap(hcm.rds).config_source).path_config_source).path;
    const basicAuth = asList(hcm.http_filters).find((f) => f.name === 'envoy.filters.http.basic_auth');
    // Envoy's basic_auth reads Authorization unless told another header.
    const authHeader = asMap(basicAuth?.typed_config).authentication_header;
    return {
      name: String(listener.name),
      port: Number(asMap(asMap(listener.address).socket_address).port_value),
      tls,
      http2: allowConnect && codec !== 'HTTP1' && (!tls || alpn.includes('h2')),
      methods: routeMethods(asMap(hcm.route_config)),
      ...(typeof routesFile === 'string' ? { routesFile } : {}),
      ...(basicAuth
        ? { authHeader: typeof authHeader === 'string' ? authHeader.toLowerCase() : 'authorization' }
        : {}),
    };
  });
}

function routesOf(routeConfig: Yaml): Yaml[] {
  return asList(routeConfig.virtual_hosts).flatMap((vh) => asList(vh.routes));
}

function routeMethods(routeConfig: Yaml): string[] {
  return routesOf(routeConfig).some((r) => asMap(r.match).connect_matcher !== undefined) ? ['CONNECT'] : [];
}

/** A routes file's one RouteConfiguration (a discovery response's resources, as Envoy reads it). */
function fileRouteConfig(text: string | undefined): Yaml | undefined {
  if (text === undefined) return undefined;
  return asList(asMap(parse(text)).resources)[0];
}

/**
 * The htpasswd lines (`user:{SHA}base64(sha1(password))`) that let a request through the route that takes
 * `method`: the route's own basic_auth users (typed_per_filter_config), none where it names none (the
 * listener's own list is nobody's), none where no route takes the method (basic_auth then refuses before
 * routing would).
 */
function routeUsers(routeConfig: Yaml, method: string): string[] {
  if (method !== 'CONNECT') return [];
  const route = routesOf(routeConfig).find((r) => asMap(r.match).connect_matcher !== undefined);
  const perRoute = asMap(asMap(route?.typed_per_filter_config)['envoy.filters.http.basic_auth']);
  const users = asMap(perRoute.users).inline_string;
  return typeof users === 'string' ? users.split('\n').filter((line) => line.includes(':')) : [];
}

/** Whether a `Basic` header value names one of the htpasswd `{SHA}` lines. */
export function basicCredentialMatches(header: string | undefined, users: string[]): boolean {
  const encoded = /^Basic\s+(\S+)$/i.exec(header ?? '')?.[1];
  if (!encoded) return false;
  const decoded = Buffer.from(encoded, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 1) return false;
  const [user, password] = [decoded.slice(0, colon), decoded.slice(colon + 1)];
  const hash = `{SHA}${createHash('sha1').update(password).digest('base64')}`;
  return users.some((line) => line === `${user}:${hash}`);
}

/**
 * What the proxy does with `ask`: serves it, or refuses it as Envoy would (with the line it logs). A
 * listener whose routes are in a file reads it through `files`; a file it cannot read has no routes.
 */
export function proxyAnswer(
  listeners: ProxyListener[],
  ask: TunnelAsk,
  files: ProxyFiles = () => undefined,
): ProxyAnswer {
  const listener = listeners.find((l) => l.port === ask.port);
  if (!listener) return { served: false, reason: `the proxy has no listener on port ${ask.port}` };
  if (ask.tls && !listener.tls) {
    // The client hello reaches the HTTP codec, which answers 400 in plain text.
    return {
      served: false,
      reason: `TLS to the proxy's plain-text listener ${listener.name} (:${listener.port}); Envoy answers 400`,
      logged: { status: 400, flags: 'DPE' },
    };
  }
  if (!ask.tls && listener.tls) {
    return {
      served: false,
      reason: `plain text to the proxy's TLS listener ${listener.name} (:${listener.port}); the handshake fails, nothing logged`,
    };
  }
  if (ask.protocol === 'HTTP/2' && !listener.http2) {
    return {
      served: false,
      reason: `HTTP/2 to ${listener.name} (:${listener.port}), which speaks HTTP/1.1 only`,
    };
  }
  const routeConfig = listener.routesFile ? (fileRouteConfig(files(listener.routesFile)) ?? {}) : undefined;
  // basic_auth comes before the router in the filter chain: an unauthenticated request never gets routed.
  if (listener.authHeader) {
    const users = routeConfig ? routeUsers(routeConfig, ask.method) : [];
    if (!basicCredentialMatches(ask.authorization, users)) {
      return {
        served: false,
        reason:
          `${ask.method} to ${listener.name} (:${listener.port}) ` +
          `${ask.authorization ? 'with a credential the proxy does not know' : `without ${listener.authHeader}`}; ` +
          'Envoy answers 407',
        logged: { status: 407, flags: '-' },
      };
    }
  }
  const methods = routeConfig ? routeMethods(routeConfig) : listener.methods;
  if (!methods.includes(ask.method)) {
    return {
      served: false,
      reason: `${ask.method} to ${listener.name} (:${listener.port}), whose routes tunnel only ${methods.join(', ') || 'nothing'}; Envoy answers 404`,
      logged: { status: 404, flags: 'NR' },
    };
  }
  return { served: true };
}

/** Where a tunnel's log lines say it came from and went to. */
export interface TunnelEnds {
  time: Date;
  /** The client's `ip:port` as the proxy sees it. */
  client: string;
  /** The resolved CONNECT target, `ip:port`. */
  target: string;
  /** The CONNECT authority as asked, `host:port`. */
  authority: string;
}

/**
 * The lines envoy/envoy.yaml's access-log format writes for `ask` and what the proxy did with it: a served
 * tunnel's opening and end (the client closes it: DC), a refused request's one line, or none.
 */
export function proxyLogLines(ask: TunnelAsk, answer: ProxyAnswer, ends: TunnelEnds): string[] {
  const head = `[${ends.time.toISOString()}] ${ends.client}`;
  if (answer.served) {
    const line = (flags: string, type: string) =>
      `${head} "${ask.method} ${ends.target} - ${ask.protocol}" - 200 - ${flags} ${ends.authority} ${type}`;
    return [line('-', 'DownstreamTunnelSuccessfullyEstablished'), line('DC', 'DownstreamEnd')];
  }
  if (!answer.logged) return [];
  const { status, flags } = answer.logged;
  // A request the codec could not read has no method, path or authority; one no route takes has them, a
  // CONNECT has no path.
  const requestPath = ask.method === 'CONNECT' ? '-' : '/';
  return status === 400
    ? [`${head} "- - - HTTP/1.1" - ${status} - ${flags} - DownstreamEnd`]
    : [
        `${head} "${ask.method} - ${requestPath} ${ask.protocol}" - ${status} - ${flags} ${ends.authority} DownstreamEnd`,
      ];
}

/** What happens at the lab's proxy when the mesh opens `ask` to it for `authority`. */
export type ProxyVisit =
  | { served: true; lines: string[]; target: { ip: string; port: number; host: string }; note: string }
  | { served: false; lines: string[]; why: string };

/**
 * The proxy's side of a tunnel, for the model's walk and for the local lab's data path alike: whether it
 * serves `ask`, the access-log lines it writes, and where the tunnel leads (the authority resolved as the
 * proxy's DNS would).
 */
export function visitProxy(
  listeners: ProxyListener[],
  ask: TunnelAsk,
  authority: string,
  at: { time: Date; client: string },
  files?: ProxyFiles,
): ProxyVisit {
  const [host, portText] = splitHostPort(authority);
  const ip = isIp(host) ? host : publicAddress(host);
  const port = Number(portText ?? 443);
  const answer = proxyAnswer(listeners, ask, files);
  const how = `${ask.method} ${authority} to :${ask.port} (${ask.tls ? 'TLS' : 'plain text'}, ${ask.protocol})`;
  const lines = (target: string) => proxyLogLines(ask, answer, { ...at, target, authority });
  // A refused request's line names no target.
  if (!answer.served) return { served: false, lines: lines('-'), why: `${how} refused: ${answer.reason}` };
  if (!ip) return { served: false, lines: [], why: `the proxy cannot resolve ${host}` };
  return { served: true, lines: lines(`${ip}:${port}`), target: { ip, port, host }, note: how };
}
