/**
 * curl's command line inside simulated containers: the options the lab's probes use, parsed like curl
 * parses them, and curl's output (body, headers, `-w`, error lines) for a simulated result. Options that
 * would read or write files are limited to the ones the sim can map (client certificates, /dev/null),
 * because a request to the real external app runs the host's curl with these arguments.
 */

export interface CurlCall {
  url: URL;
  silent: boolean;
  showError: boolean;
  verbose: boolean;
  insecure: boolean;
  head: boolean;
  include: boolean;
  fail: boolean;
  /** `-o`: `/dev/null` or `-`. */
  output?: string;
  writeOut?: string;
  /** `-D`: `-` or `/dev/null`. */
  dumpHeader?: string;
  /** `--max-time` in seconds. */
  maxTime?: number;
  /** Container paths of `--cert`, `--key` and `--cacert`. */
  files: { cert?: string; key?: string; cacert?: string };
  /** The arguments as given, without `curl`. */
  args: string[];
}

export type CurlParse = { call: CurlCall } | { exitCode: number; stderr: string };

/** What happened on the network, as curl reports it. */
export interface CurlResult {
  /** curl's exit code: 0 once an HTTP response arrived. */
  exitCode: number;
  /** 0 when there was no HTTP response (curl prints 000). */
  httpCode: number;
  /** curl's error text, without the `curl: (N) ` prefix. */
  error?: string;
  remoteIp?: string;
}

const BOOLEAN: Record<string, keyof CurlCall | null> = {
  '-s': 'silent',
  '--silent': 'silent',
  '-S': 'showError',
  '--show-error': 'showError',
  '-v': 'verbose',
  '--verbose': 'verbose',
  '-k': 'insecure',
  '--insecure': 'insecure',
  '-I': 'head',
  '--head': 'head',
  '-i': 'include',
  '--include': 'include',
  '-f': 'fail',
  '--fail': 'fail',
  '-L': null,
  '--location': null,
  '--fail-with-body': null,
  '--http1.1': null,
  '--http2': null,
  '--tlsv1.2': null,
  '--tlsv1.3': null,
  '--compressed': null,
  '--no-progress-meter': null,
};

const WITH_VALUE = new Set([
  '-o',
  '--output',
  '-w',
  '--write-out',
  '-m',
  '--max-time',
  '--connect-timeout',
  '-H',
  '--header',
  '-X',
  '--request',
  '-d',
  '--data',
  '-A',
  '--user-agent',
  '-D',
  '--dump-header',
  '-E',
  '--cert',
  '--key',
  '--cacert',
  '--retry',
  '--retry-delay',
  '--retry-max-time',
]);

const HINT = "curl: try 'curl --help' or 'curl --manual' for more information";

export function parseCurl(args: string[]): CurlParse {
  const call: Omit<CurlCall, 'url'> & { url?: URL } = {
    silent: false,
    showError: false,
    verbose: false,
    insecure: false,
    head: false,
    include: false,
    fail: false,
    files: {},
    args,
  };
  const urls: string[] = [];
  const usage = (message: string) => ({ exitCode: 2, stderr: `curl: ${message}\n${HINT}\n` });
  const limited = (option: string, allowed: string) => ({
    exitCode: 2,
    stderr: `curl: option ${option}: the simulated cluster only allows ${allowed}\n`,
  });
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith('-') || arg === '-') {
      urls.push(arg);
      continue;
    }
    // Short options combine (`-sS`, `-sSo FILE`); a value option ends the group.
    const options = arg.startsWith('--') ? [arg] : [...arg.slice(1)].map((c) => `-${c}`);
    for (let j = 0; j < options.length; j++) {
      const option = options[j]!;
      if (option in BOOLEAN) {
        const field = BOOLEAN[option];
        if (field) (call as Record<string, unknown>)[field] = true;
        continue;
      }
      if (!WITH_VALUE.has(option)) return usage(`option ${arg}: is unknown`);
      const attached = arg.startsWith('--') ? '' : arg.slice(j + 2);
      const value = attached || args[++i];
      if (value === undefined) return usage(`option ${option}: requires parameter`);
      switch (option) {
        case '-o':
        case '--output':
          if (value !== '/dev/null' && value !== '-') return limited(option, '/dev/null or -');
          call.output = value;
          break;
        case '-D':
        case '--dump-header':
          if (value !== '/dev/null' && value !== '-') return limited(option, '/dev/null or -');
          call.dumpHeader = value;
          break;
        case '-w':
        case '--write-out':
          if (value.startsWith('@')) return limited(option, 'an inline format');
          call.writeOut = value;
          break;
        case '-m':
        case '--max-time':
          call.maxTime = Number(value);
          if (!Number.isFinite(call.maxTime))
            return usage(`option ${option}: expected a proper numerical parameter`);
          break;
        case '-d':
        case '--data':
          if (value.startsWith('@')) return limited(option, 'inline data');
          break;
        case '-E':
        case '--cert':
          call.files.cert = value;
          break;
        case '--key':
          call.files.key = value;
          break;
        case '--cacert':
          call.files.cacert = value;
          break;
      }
      break;
    }
  }
  if (urls.length === 0) return usage('no URL specified!');
  if (urls.length > 1) return limited('URL', 'one URL per call');
  let url: URL;
  try {
    url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(urls[0]!) ? urls[0]! : `http://${urls[0]}`);
  } catch {
    return { exitCode: 3, stderr: 'curl: (3) URL using bad/illegal format or missing URL\n' };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return { exitCode: 1, stderr: `curl: (1) Protocol "${url.protocol.slice(0, -1)}" not supported\n` };
  }
  return { call: { ...call, url } };
}

/** The port a URL targets, with the scheme's default. */
export function urlPort(url: URL): number {
  return url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
}

const REASONS: Record<number, string> = {
  200: 'OK',
  400: 'Bad Request',
  404: 'Not Found',
  502: 'Bad Gateway',
};

/** What curl prints for a simulated result: the response (or error) shaped by the call's options. */
export function curlOutput(
  call: CurlCall,
  result: CurlResult,
): { stdout: string; stderr: string; exitCode: number } {
  let stdout = '';
  let stderr = '';
  let { exitCode, error } = result;
  const host = call.url.hostname;
  if (call.verbose && result.remoteIp) {
    stderr += `*   Trying ${result.remoteIp}:${urlPort(call.url)}...\n`;
    if (exitCode === 0 || exitCode === 35 || exitCode === 60) {
      stderr += `* Connected to ${host} (${result.remoteIp}) port ${urlPort(call.url)}\n`;
    }
  }
  if (exitCode === 0 && call.fail && result.httpCode >= 400) {
    exitCode = 22;
    error = `The requested URL returned error: ${result.httpCode}`;
  }
  if (exitCode === 0 || (exitCode === 22 && !call.fail)) {
    const headers = `HTTP/1.1 ${result.httpCode} ${REASONS[result.httpCode] ?? ''}\r\ncontent-type: text/html\r\n\r\n`;
    const body = `<!doctype html><title>${host}</title><p>${host} (simulated response)</p>\n`;
    if (call.dumpHeader === '-') stdout += headers;
    const shown = call.head ? headers : call.include ? headers + body : body;
    if (call.output !== '/dev/null') stdout += shown;
  }
  if (call.writeOut !== undefined) stdout += writeOut(call.writeOut, call, { ...result, exitCode, error });
  if (exitCode !== 0 && (!call.silent || call.showError))
    stderr += `curl: (${exitCode}) ${error ?? 'failed'}\n`;
  return { stdout, stderr, exitCode };
}

function writeOut(format: string, call: CurlCall, result: CurlResult): string {
  return format
    .replace(/%\{(\w+)\}/g, (whole, name: string) => {
      switch (name) {
        case 'http_code':
        case 'response_code':
          return String(result.httpCode).padStart(3, '0');
        case 'exitcode':
          return String(result.exitCode);
        case 'errormsg':
          return result.error ?? '';
        case 'url_effective':
          return call.url.href;
        case 'remote_ip':
          return result.remoteIp ?? '';
        default:
          return whole;
      }
    })
    .replace(/\\n/g, '\n')
    .replace(/\\t/g, '\t')
    .replace(/\\r/g, '\r')
    .replace(/%%/g, '%');
}
