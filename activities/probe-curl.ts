import { z } from 'zod';
import { K8S_NAME } from '../src/lab/kube-names.js';
import { isDuration, toMs } from '../src/duration.js';
import { ExpectationError, LabToolError } from '../src/errors.js';
import { defineAction } from './action.js';

const STDERR_TAIL = 600;

/** Input of probe.curl. */
export const probeCurlInput = z
  .object({
    url: z.url({ protocol: /^https?$/ }).describe('URL curl requests from inside the pod.'),
    namespace: z
      .string()
      .regex(K8S_NAME, 'must be a namespace name')
      .optional()
      .describe("Namespace of the client pod; the lab's `namespace` by default."),
    selector: z
      .string()
      .min(1)
      .default('app=curl')
      .describe('Label selector of the client pod (the first Running one).'),
    container: z
      .string()
      .optional()
      .describe("Container curl runs in; the selector's app label value by default (curl for app=curl)."),
    expect: z
      .union([
        z
          .object({
            status: z.number().int().min(100).max(599).default(200).describe('Expected HTTP status code.'),
          })
          .strict(),
        z
          .object({
            fails: z
              .boolean()
              .describe(
                'true: expect curl to get no HTTP response at all (e.g. REGISTRY_ONLY resets the connection); ' +
                  'false: expect HTTP 200, so that a variable can choose.',
              ),
          })
          .strict(),
      ])
      .default({ status: 200 })
      .describe(
        'What counts as success; otherwise the attempt fails and is retried (the mesh may still converge).',
      ),
    curlArgs: z
      .array(z.string())
      .default([])
      .describe('Extra curl arguments, e.g. [--cert, /etc/pki/tls/certs/client-crt.pem, --key, ...].'),
    maxTime: z
      .string()
      .refine(isDuration, 'must be a duration such as 10s')
      .default('10s')
      .describe('curl --max-time.'),
  })
  .strict();

/** Output of probe.curl. */
export interface ProbeCurlOutput {
  pod: string;
  container: string;
  /** HTTP status; 0 when there was no response (curl's 000). */
  status: number;
  /** curl's exit code. */
  exitCode: number;
  stderrTail: string;
}

/** The value of `app=` in a label selector, if it has one. */
function appLabel(selector: string): string | undefined {
  return /(?:^|,)\s*app\s*==?\s*([^,\s]+)/.exec(selector)?.[1];
}

/** What a probe expects: an HTTP status, or no answer at all (undefined). */
function expectedStatus(input: z.output<typeof probeCurlInput>): number | undefined {
  if ('fails' in input.expect) return input.expect.fails ? undefined : 200;
  return input.expect.status;
}

function expectation(input: z.output<typeof probeCurlInput>): string {
  const status = expectedStatus(input);
  return status === undefined ? 'no answer' : `HTTP ${status}`;
}

/** Runs curl in a client pod and checks the outcome: an HTTP status, or that the connection fails. */
export const probeCurlAction = defineAction({
  name: 'probe.curl',
  description:
    'Run curl inside a client pod (kubectl exec) and check the HTTP status, or that the request fails ' +
    '(e.g. blocked by REGISTRY_ONLY).',
  input: probeCurlInput,
  policy: {
    timeout: '1m',
    maxTimeout: '10m',
    heartbeatTimeout: '30s',
    // A probe that comes too early (config applied a moment ago, which istiod pushes in about a second; a
    // pod not Running yet) is right a second later.
    retry: { attempts: 10, initialInterval: '1s', backoff: 2, maxInterval: '30s' },
    maxAttempts: 60,
  },
  idempotent: true,
  summary: (input) => `probe.curl ${input.url} from ${input.selector}, expect ${expectation(input)}`,
  expects: (input) => `${expectation(input)} from ${input.url}, in a pod matching ${input.selector}`,
  evidence: (output: ProbeCurlOutput, input) => {
    const why = output.stderrTail.split('\n').filter(Boolean).at(-1);
    const seen =
      output.status === 0
        ? `no HTTP answer from ${input.url}: curl exit ${output.exitCode}${why ? ` (${why})` : ''}`
        : `HTTP ${output.status} from ${input.url}`;
    return [`${seen}, in pod ${output.pod}`];
  },
  examples: [
    {
      description: 'The egress path works',
      yaml: 'id: google\nuses: probe.curl\nwith:\n  url: https://www.google.com',
    },
    {
      description: 'REGISTRY_ONLY blocks a host without a ServiceEntry',
      yaml: 'id: blocked\nuses: probe.curl\nwith:\n  url: https://www.google.com\n  expect: { fails: true }',
    },
    {
      description: 'Mutual TLS to the external app with the client certificate',
      yaml:
        'id: mtls\nuses: probe.curl\nwith:\n  url: https://external-app.default.svc.cluster.local\n' +
        '  selector: app=curl-mtls\n  curlArgs: [--cert, /etc/pki/tls/certs/client-crt.pem, --key,\n' +
        '             /etc/pki/tls/private/client-key.pem, --cacert, /etc/pki/tls/certs/ca.pem]',
    },
  ],
  // It sends requests, which change nothing the run must undo.
  changes: () => [],
  create: () => async (input, ctx) => {
    const lab = await ctx.lab();
    const namespace = input.namespace ?? lab.def.namespace;
    const ns = ['-n', namespace];
    const container = input.container ?? appLabel(input.selector);
    const maxSeconds = toMs(input.maxTime) / 1000;
    const curl = [
      'curl',
      '-sS',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      '--max-time',
      String(maxSeconds),
      ...input.curlArgs,
      input.url,
    ];
    // The pod kept from an earlier step, or picked again when it is gone.
    const { pod, result } = await lab.inPod(namespace, input.selector, (name) =>
      lab.kubectl([...ns, 'exec', name, ...(container ? ['-c', container] : []), '--', ...curl], {
        check: false,
        timeoutMs: toMs(input.maxTime) + 60_000,
      }),
    );
    // kubectl passes the command's exit code on and says so; any other failure is kubectl's own.
    const remote = /command terminated with exit code (\d+)/.exec(result.stderr);
    if (result.exitCode !== 0 && !remote) {
      throw new LabToolError(
        ['kubectl', 'exec', pod, '--', 'curl', input.url],
        result.exitCode,
        result.stderr.trim(),
      );
    }
    const code = /(\d{3})\s*$/.exec(result.stdout)?.[1];
    const stderrTail = result.stderr
      .split('\n')
      .filter((line) => line && !line.startsWith('command terminated with exit code'))
      .join('\n')
      .slice(-STDERR_TAIL);
    const output: ProbeCurlOutput = {
      pod,
      container: container ?? '',
      status: code ? Number(code) : 0,
      exitCode: result.exitCode,
      stderrTail,
    };
    const got = `HTTP ${code ?? '000'}, curl exit ${output.exitCode}${stderrTail ? `: ${stderrTail.trim().split('\n').at(-1)}` : ''}`;
    const status = expectedStatus(input);
    if (status === undefined) {
      if (output.exitCode === 0 && output.status !== 0) {
        throw new ExpectationError(`expected ${input.url} to fail from ${pod}, but it answered (${got})`);
      }
    } else if (output.exitCode !== 0 || output.status !== status) {
      throw new ExpectationError(`expected HTTP ${status} from ${input.url} in ${pod}, got ${got}`);
    }
    return output;
  },
});
