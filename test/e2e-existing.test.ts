/**
 * A lab of kind existing: a cluster and a proxy that already run, reached through a kubeconfig and ssh
 * named in the lab file, as a user's own cluster is. Here they are a kept simulated lab, booted and given
 * Istio by a run of its own first; the existing lab points the same tools at its API (its kubeconfig, the
 * stand-in kubectl and istioctl), at its real sshd (the host key checked) and at the real Envoy's access
 * log. The shipped playbooks run on it unchanged: the VM steps are skipped, saying why, the kubeconfig is
 * copied rather than fetched, and istio.install checks the Istio it finds instead of installing.
 */
import { appendFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { parse, stringify } from 'yaml';
import { SCENARIO_KINDS } from '../activities/manifest-prune.js';
import { labelValue, RUN_LABEL } from '../src/lab/ownership.js';
import { parseSshConfigs } from '../src/lab/ssh.js';
import type { ScenarioInput, ScenarioResult, StepRecord } from '../workflows/types.js';
import {
  eventually,
  outcome,
  root,
  start,
  type TestLab,
  useWorker,
  writePlaybook,
} from './support/temporal.js';
import { proxyPodManifest } from './support/existing-lab.js';
import { simLabVariant } from './support/variants.js';

let lab: TestLab;
useWorker('existing', (created) => (lab = created));

const failedSteps = (result: ScenarioResult) =>
  result.steps.filter((s) => s.status === 'failed').map((s) => `${s.id}: ${s.error ?? ''}`);
const stepsById = (result: ScenarioResult): Record<string, StepRecord> =>
  Object.fromEntries(result.steps.map((s) => [s.id, s]));

/** One of the backing lab's tools (its `vagrant`, `kubectl`), with the environment its lab file gives them. */
function backingTool(labFile: string, tool: string, args: string[]) {
  const state = path.join(lab.stateRoot, 'labs', 'backing');
  return execa(path.join(root, 'sim', 'bin', tool), args, {
    env: {
      ...process.env,
      TUNNEL_LAB_CONFIG: labFile,
      TUNNEL_LAB_STATE_DIR: state,
      TUNNEL_LAB_SIM_STATE: path.join(state, 'sim'),
    },
    cwd: state,
    reject: false,
  });
}

/** The host key fingerprint of the sshd on `port`, as ssh-keyscan and ssh-keygen report it. */
async function hostKeyOf(port: number): Promise<string> {
  const scan = await execa('ssh-keyscan', ['-t', 'ed25519', '-p', String(port), '127.0.0.1']);
  const { stdout } = await execa('ssh-keygen', ['-lf', '-'], { input: scan.stdout });
  return /(SHA256:\S+)/.exec(stdout)![1]!;
}

describe('a lab of kind existing', () => {
  let backingFile: string;
  let backing: string;
  /** The existing lab's definition, as data; each test writes the variant it needs. */
  let existing: Record<string, unknown> & { machines: Record<string, Record<string, unknown>> };

  const writeExisting = async (name: string, edit: (def: typeof existing) => void = () => {}) => {
    const def = structuredClone(existing);
    def.name = name;
    edit(def);
    const file = path.join(lab.stateRoot, `${name}.yaml`);
    await writeFile(file, stringify(def));
    return file;
  };
  /** The run ids of the runs started so far, by playbook: whose labelled objects to look for afterwards. */
  const runIds: string[] = [];
  const run = async (
    playbook: string,
    labFile: string,
    vars?: ScenarioInput['vars'],
  ): Promise<ScenarioResult> => {
    const input: ScenarioInput = { playbook, lab: labFile, ...(vars ? { vars } : {}) };
    const handle = await start(lab, input);
    runIds.push(handle.workflowId);
    return outcome(handle);
  };
  /** The objects on the backing cluster that carry a run's label, as `kind/name` lines. */
  const labelled = async (workflowId: string): Promise<string[]> => {
    const { stdout } = await backingTool(backingFile, 'kubectl', [
      '--kubeconfig',
      path.join(backing, 'kubeconfig'),
      'get',
      SCENARIO_KINDS.join(','),
      '--all-namespaces',
      '-l',
      `${RUN_LABEL}=${labelValue(workflowId)}`,
      '-o',
      'name',
    ]);
    return stdout.split('\n').filter(Boolean);
  };

  beforeAll(async () => {
    backingFile = await simLabVariant(lab.stateRoot, 'backing', (def) => {
      def.lifetime = 'lab';
    });
    backing = path.join(lab.stateRoot, 'labs', 'backing');
    // The cluster as its owner left it: booted, Istio installed letting any host out (ALLOW_ANY, Istio's
    // default), the app's certificates made.
    const setup = await writePlaybook(
      'backing-setup',
      stringify({
        name: 'backing-setup',
        steps: [
          { id: 'certs', uses: 'certs.generate' },
          { id: 'vms', uses: 'vm.up' },
          { id: 'kubeconfig', uses: 'kubeconfig.fetch' },
          {
            id: 'istio',
            uses: 'istio.install',
            with: {
              profile: 'demo',
              set: {
                'meshConfig.accessLogFile': '/dev/stdout',
                'meshConfig.outboundTrafficPolicy.mode': 'ALLOW_ANY',
              },
            },
          },
        ],
      }),
    );
    expect(failedSteps(await run(setup, backingFile))).toEqual([]);

    const ssh = parseSshConfigs(
      (await backingTool(backingFile, 'vagrant', ['ssh-config', 'external-proxy', 'external-app'])).stdout,
    );
    const sshOf = async (machine: string) => {
      const target = ssh.get(machine)!;
      return {
        host: target.host,
        port: target.port,
        user: target.user,
        identityFile: target.identityFiles[0],
        hostKey: await hostKeyOf(target.port),
      };
    };
    const vms = path.join(backing, 'vms');
    existing = {
      name: 'existing',
      kind: 'existing',
      tools: {
        kubectl: path.join(root, 'sim', 'bin', 'kubectl'),
        istioctl: path.join(root, 'sim', 'bin', 'istioctl'),
      },
      // The stand-ins answer for the backing lab's cluster.
      env: {
        TUNNEL_LAB_CONFIG: backingFile,
        TUNNEL_LAB_STATE_DIR: backing,
        TUNNEL_LAB_SIM_STATE: path.join(backing, 'sim'),
      },
      cluster: { kubeconfig: path.join(backing, 'kubeconfig') },
      namespace: 'tunnel-lab-a',
      istio: { version: '1.28.3' },
      certsDir: path.join(backing, 'certs'),
      machines: {
        'external-proxy': {
          role: 'proxy',
          ip: '192.168.56.10',
          ssh: await sshOf('external-proxy'),
          files: {
            accessLog: path.join(vms, 'external-proxy', 'var', 'log', 'envoy', 'access.log'),
            authRoutes: path.join(vms, 'external-proxy', 'etc', 'envoy', 'auth', 'routes.yaml'),
          },
        },
        'external-app': {
          role: 'app',
          ip: '192.168.56.30',
          ssh: await sshOf('external-app'),
          files: { accessLog: path.join(vms, 'external-app', 'var', 'log', 'nginx', 'access.log') },
        },
      },
      network: { proxyPort: 3128, proxyPlainPort: 3129, appPort: 443 },
    };
  }, 240_000);

  afterAll(async () => {
    await backingTool(backingFile, 'vagrant', ['destroy', '-f']);
  });

  /** What `kubectl get` says on the backing cluster. */
  const backingGet = async (...args: string[]) =>
    backingTool(backingFile, 'kubectl', ['--kubeconfig', path.join(backing, 'kubeconfig'), 'get', ...args]);
  /** The mesh-wide settings in the `istio` ConfigMap. */
  const meshConfig = async (): Promise<unknown> =>
    parse(
      (await backingGet('-n', 'istio-system', 'configmap', 'istio', '-o', 'jsonpath={.data.mesh}')).stdout,
    );

  it('runs tls-passthrough and mtls unchanged in a namespace of their own: no VM steps, the kubeconfig copied, the installed Istio checked', async () => {
    const file = await writeExisting('existing');
    const tls = await run('tls-passthrough', file);
    expect(failedSteps(tls)).toEqual([]);
    expect(tls.status).toBe('passed');
    const steps = stepsById(tls);
    // What the run would change on the shared cluster was worked out before its first step, and kept.
    const listed = tls.changes!.steps.flatMap((s) => s.changes.map((c) => `${s.id}: ${c}`));
    expect(tls.changes!.lab).toBe('existing');
    expect(listed).toContain('tunnel: apply EnvoyFilter istio-system/egress-tcp-tunnel');
    expect(listed).toContain('service-entries: apply ServiceEntry tunnel-lab-a/www.google.com');
    expect(listed).toContain(
      "namespace: create Namespace tunnel-lab-a if absent (then removed with the run's objects), else label it: istio-injection=enabled",
    );
    expect(listed.filter((l) => /^(vms|istio|teardown):/.test(l))).toEqual([]);
    expect(listed.filter((l) => l.startsWith('leave-nothing: delete '))).toHaveLength(1);
    // Nothing the run applied stays on the shared cluster: its finally step removed exactly its own.
    const removed = (steps['leave-nothing']!.output as { deleted: string[] }).deleted;
    expect(removed).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^envoyfilter\.networking\.istio\.io "egress-tcp-tunnel" deleted/),
        expect.stringMatching(/^serviceentry\.networking\.istio\.io "www\.google\.com" deleted/),
        expect.stringMatching(/^deployment\.apps "curl" deleted/),
        expect.stringMatching(/^sidecar\.networking\.istio\.io "tunnel-lab" deleted/),
        'namespace "tunnel-lab-a" deleted',
      ]),
    );
    expect(await labelled(runIds.at(-1)!)).toEqual([]);
    expect((await backingGet('namespace', 'tunnel-lab-a')).stderr).toContain('not found');
    // The namespace's own policy: the mesh lets any host out, the scenario's namespace only registered ones.
    expect(steps.namespace!.evidence).toEqual([
      'namespace tunnel-lab-a created for this run',
      'Sidecar tunnel-lab-a/tunnel-lab: outbound traffic REGISTRY_ONLY',
    ]);
    expect(steps.blocked!.status).toBe('passed');
    expect(steps['outside-blocked']!.status).toBe('passed');
    // This lab tunnels through the shared egress gateway: no gateway of the run's own.
    expect(steps.gateway).toMatchObject({ status: 'skipped' });
    for (const id of ['vms', 'teardown']) {
      expect(steps[id]).toMatchObject({
        status: 'skipped',
        output: { skipped: expect.stringMatching(/kind: existing/) },
      });
      expect(steps[id]!.evidence).toEqual([expect.stringMatching(/^skipped: the lab existing is a cluster/)]);
    }
    expect(steps.kubeconfig!.output).toMatchObject({
      copiedFrom: path.join(backing, 'kubeconfig'),
      serverVersion: expect.stringMatching(/^v1\./),
    });
    // The copy holds credentials: the run's folder, owner-only.
    const copy = (steps.kubeconfig!.output as { path: string }).path;
    expect((await stat(copy)).mode & 0o777).toBe(0o600);
    expect(steps.istio).toMatchObject({ status: 'passed', output: { skipped: true } });
    expect(steps.istio!.evidence).toEqual(
      expect.arrayContaining(['istiod: Istio 1.28.3', 'meshConfig.accessLogFile: /dev/stdout']),
    );
    // The log checks read the real Envoy's log over the lab file's ssh, host key checked.
    expect(steps['proxy-saw-a']!.status).toBe('passed');
    expect(steps['proxy-saw-a']!.evidence?.join('\n')).toMatch(
      /CONNECT \S+ \S+ HTTP\/1\.1" - 200 .* www\.google\.com:443/,
    );

    const mtls = await run('mtls', file);
    expect(failedSteps(mtls)).toEqual([]);
    expect(stepsById(mtls)['call-app']!.output).toMatchObject({ status: 200 });
    expect(await labelled(runIds.at(-1)!)).toEqual([]);
    expect((await backingGet('namespace', 'tunnel-lab-a')).stderr).toContain('not found');
    // Nothing outside the run's namespace changed: the mesh's settings, and the namespace default.
    expect(await meshConfig()).toEqual({
      outboundTrafficPolicy: { mode: 'ALLOW_ANY' },
      accessLogFile: '/dev/stdout',
    });
    const defaultNs = await backingGet('namespace', 'default', '-o', 'jsonpath={.metadata.labels}');
    expect(JSON.parse(defaultNs.stdout)).toEqual({ 'kubernetes.io/metadata.name': 'default' });
    expect((await backingGet('sidecars.networking.istio.io', '-A', '-o', 'name')).stdout).toBe('');
  }, 300_000);

  it('runs two labs on one cluster at once, each in a namespace of its own with an egress gateway of its own', async () => {
    const labA = await writeExisting('existing-a', (def) => {
      def.namespace = 'tunnel-lab-a';
      def.egressGateway = 'own';
    });
    const labB = await writeExisting('existing-b', (def) => {
      def.namespace = 'tunnel-lab-b';
      def.egressGateway = 'own';
    });
    // Each run's hosts are its own, so that each run's count of tunnels in the shared proxy's log is its own.
    const [a, b] = await Promise.all([
      run('tls-passthrough', labA),
      run('tls-passthrough', labB, {
        hostA: 'docs.python.org',
        hostB: 'www.kernel.org',
        hostOutside: 'www.debian.org',
      }),
    ]);
    expect(failedSteps(a)).toEqual([]);
    expect(failedSteps(b)).toEqual([]);
    const stepsA = stepsById(a);
    const stepsB = stepsById(b);
    // They ran at the same time: each one's tunnel was up while the other's steps went on.
    const span = (steps: Record<string, StepRecord>, first: string, last: string) => [
      Date.parse(steps[first]!.startedAt!),
      Date.parse(steps[last]!.startedAt!) + steps[last]!.durationMs!,
    ];
    const [startA, endA] = span(stepsA, 'namespace', 'tunnelled-a');
    const [startB, endB] = span(stepsB, 'namespace', 'tunnelled-a');
    expect(startA! < endB! && startB! < endA!).toBe(true);
    // Each through its own gateway, in its own namespace; nothing in istio-system.
    for (const [steps, ns] of [
      [stepsA, 'tunnel-lab-a'],
      [stepsB, 'tunnel-lab-b'],
    ] as const) {
      expect(steps.gateway!.status).toBe('passed');
      expect(steps.gateway!.evidence).toEqual([
        expect.stringContaining('"tunnel-lab-egress" successfully rolled out'),
      ]);
      expect(steps.tunnel!.output).toMatchObject({
        lines: expect.arrayContaining([`envoyfilter.networking.istio.io/egress-tcp-tunnel created`]),
      });
      const changes = (ns === 'tunnel-lab-a' ? a : b).changes!.steps.flatMap((s) => s.changes);
      expect(changes.filter((c) => /istio-system/.test(c))).toEqual([]);
      expect(changes).toContain(`apply EnvoyFilter ${ns}/egress-tcp-tunnel`);
      expect(changes).toContain(`apply Deployment ${ns}/tunnel-lab-egress`);
    }
    // The real Envoy saw each run's tunnels, once per host.
    expect(stepsB['proxy-saw-a']!.evidence?.join('\n')).toMatch(
      /CONNECT \S+ \S+ HTTP\/1\.1" - 200 .* docs\.python\.org:443/,
    );
    expect(stepsA['proxy-saw-a']!.evidence?.join('\n')).toMatch(/ www\.google\.com:443/);
    // Neither left anything, and the shared egress gateway was never touched.
    for (const id of runIds.slice(-2)) expect(await labelled(id)).toEqual([]);
    expect(
      (await backingGet('envoyfilters.networking.istio.io', '-n', 'istio-system', '-o', 'name')).stdout,
    ).toBe('');
  }, 300_000);

  it("runs http-tunnels through an egress gateway of its own: plain HTTP on the run's gateway's plain port, both ways", async () => {
    const file = await writeExisting('existing-http', (def) => {
      def.namespace = 'tunnel-lab-http';
      def.egressGateway = 'own';
    });
    const app = 'external-app-http.tunnel-lab-http.svc.cluster.local';
    const handle = await start(lab, { playbook: 'http-tunnels', lab: file, vars: { appHttpHost: app } });
    const result = await outcome(handle);
    expect(result.status).toBe('passed');
    expect(result.cells!.map((c) => [c.id, c.status])).toEqual([
      ['tunnel=tcp-tunnel-filter', 'passed'],
      ['tunnel=native-tunnel', 'passed'],
    ]);
    for (const cell of result.cells!) {
      runIds.push(cell.workflowId);
      const steps = stepsById(await outcome(lab.client.workflow.getHandle(cell.workflowId)));
      // The run's own gateway serves the plain port too (80 -> 8080), and the sidecar sends the app's there.
      expect(steps['tunnel-ready']!.output).toMatchObject({
        gatewayTunnels: ['192.168.56.30:80'],
        sidecar: {
          routes: { [`${app}:80`]: 'outbound|80||tunnel-lab-egress.tunnel-lab-http.svc.cluster.local' },
        },
      });
      expect((steps['app-saw-request']!.output as { matches: string[] }).matches).toHaveLength(1);
      // The real Envoy cannot reach the app machine's address here, so the model wrote this line.
      expect(steps['proxy-saw-app']!.evidence?.join('\n')).toMatch(
        /"CONNECT 192\.168\.56\.30:80 - HTTP\/1\.1" - 200 /,
      );
      expect(await labelled(cell.workflowId)).toEqual([]);
    }
    expect(
      (await backingGet('envoyfilters.networking.istio.io', '-n', 'istio-system', '-o', 'name')).stdout,
    ).toBe('');
  }, 300_000);

  it('skips the log checks, saying why, when the lab names no proxy log; the probes carry the verdict', async () => {
    const file = await writeExisting('existing-no-log', (def) => {
      delete def.machines['external-proxy']!.files;
    });
    const result = await run('tls-passthrough', file);
    expect(failedSteps(result)).toEqual([]);
    const steps = stepsById(result);
    for (const id of [
      'mark-direct',
      'proxy-untouched',
      'mark-tunnel',
      'proxy-saw-a',
      'proxy-saw-nothing-else',
    ]) {
      expect(steps[id]).toMatchObject({ status: 'skipped' });
      expect(steps[id]!.evidence).toEqual([
        'skipped: machine external-proxy of lab existing-no-log names no accessLog file, so it is not read: the probes carry the verdict',
      ]);
    }
    // No routes file named: the proxy's credentials are not the run's to make.
    expect(steps.credential).toMatchObject({ status: 'skipped' });
    expect(steps['tunnelled-a']!.status).toBe('passed');
    expect(steps['outside-blocked']!.status).toBe('passed');
  }, 240_000);

  it("reads the proxy's log through the API server when the proxy is a pod of the cluster", async () => {
    // A forward proxy that runs in the cluster, whose container's log is the real Envoy's access log.
    const manifest = path.join(lab.stateRoot, 'corp-proxy.yaml');
    await writeFile(
      manifest,
      proxyPodManifest({ container: 'envoy', machine: 'external-proxy', path: '/var/log/envoy/access.log' }),
    );
    const kubeconfig = ['--kubeconfig', path.join(backing, 'kubeconfig')];
    expect(
      (await backingTool(backingFile, 'kubectl', [...kubeconfig, 'apply', '-f', manifest])).exitCode,
    ).toBe(0);
    try {
      const file = await writeExisting('existing-proxy-pod', (def) => {
        def.machines['external-proxy'] = {
          role: 'proxy',
          ip: '192.168.56.10',
          pod: { namespace: 'corp-proxy', name: 'deployment/corp-proxy' },
          files: { accessLog: 'envoy' },
        };
      });
      // A tunnel of an earlier run in the proxy's log: the checks must keep to the lines after their marks.
      await appendFile(
        path.join(backing, 'vms', 'external-proxy', 'var', 'log', 'envoy', 'access.log'),
        '[2026-12-01T00:00:00.000Z] "CONNECT - - HTTP/1.1" - 200 - 10.0.2.15:40000 www.google.com:443 DownstreamEnd\n',
      );
      const result = await run('tls-passthrough', file);
      expect(failedSteps(result)).toEqual([]);
      const steps = stepsById(result);
      expect(steps['mark-tunnel']!.output).toMatchObject({
        path: 'corp-proxy/deployment/corp-proxy container envoy',
        cursor: { time: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) },
      });
      for (const id of ['proxy-untouched', 'proxy-saw-a', 'proxy-saw-b', 'proxy-saw-nothing-else'])
        expect(steps[id]!.status).toBe('passed');
      expect(steps['proxy-saw-a']!.evidence?.join('\n')).toMatch(
        /1 line\(s\) matching in external-proxy:accessLog since tunnel:\n.*CONNECT \S+ \S+ HTTP\/1\.1" - 200 .* www\.google\.com:443/,
      );
      // The proxy's files are not the run's to write.
      expect(steps.credential).toMatchObject({ status: 'skipped' });
    } finally {
      await backingTool(backingFile, 'kubectl', [...kubeconfig, 'delete', 'namespace', 'corp-proxy']);
    }
  }, 240_000);

  /** A playbook of one log.mark on the proxy: one ssh command, tried once. */
  const markOnly = () =>
    writePlaybook(
      'mark-only',
      stringify({
        name: 'mark-only',
        steps: [
          {
            id: 'mark',
            uses: 'log.mark',
            with: { machine: 'external-proxy', file: 'accessLog', name: 'm' },
            retry: { attempts: 1 },
          },
        ],
      }),
    );

  it("refuses a machine whose host key is not the lab file's, naming both", async () => {
    const file = await writeExisting('existing-wrong-key', (def) => {
      (def.machines['external-proxy']!.ssh as Record<string, unknown>).hostKey = `SHA256:${'A'.repeat(43)}`;
    });
    const result = await run(await markOnly(), file);
    expect(result.status).toBe('failed');
    const actual = await hostKeyOf((existing.machines['external-proxy']!.ssh as { port: number }).port);
    expect(stepsById(result).mark!.error).toContain(
      `its host key is ${actual}, not the SHA256:${'A'.repeat(43)} the lab file names`,
    );
  }, 120_000);

  it("logs in with the worker's ssh agent when the lab file names no key, and says so when there is none", async () => {
    const agentKey = (existing.machines['external-proxy']!.ssh as { identityFile: string }).identityFile;
    const file = await writeExisting('existing-agent', (def) => {
      const ssh = def.machines['external-proxy']!.ssh as Record<string, unknown>;
      delete ssh.identityFile;
      ssh.agent = true;
    });
    const before = process.env.SSH_AUTH_SOCK;
    delete process.env.SSH_AUTH_SOCK;
    try {
      const without = await run(await markOnly(), file);
      expect(stepsById(without).mark!.error).toMatch(
        /says agent: true, but SSH_AUTH_SOCK is not set for the worker$/,
      );

      const socket = path.join(lab.stateRoot, 'agent.sock');
      const agent = execa('ssh-agent', ['-D', '-a', socket]);
      try {
        await eventually(async () => ((await stat(socket).catch(() => undefined)) ? true : undefined));
        await execa('ssh-add', [agentKey], { env: { SSH_AUTH_SOCK: socket } });
        process.env.SSH_AUTH_SOCK = socket;
        const result = await run(await markOnly(), file);
        expect(failedSteps(result)).toEqual([]);
      } finally {
        agent.kill();
        await agent.catch(() => undefined);
      }
    } finally {
      if (before === undefined) delete process.env.SSH_AUTH_SOCK;
      else process.env.SSH_AUTH_SOCK = before;
    }
  }, 120_000);

  it('checks the installed Istio against the lab file and the step, and changes nothing', async () => {
    const otherRelease = await writeExisting('existing-other-release', (def) => {
      def.istio = { version: '1.27.0' };
    });
    // tools.check would refuse the istioctl first: a playbook of the check alone shows istiod's release.
    const check = await writePlaybook(
      'istio-check',
      stringify({
        name: 'istio-check',
        steps: [
          { id: 'kubeconfig', uses: 'kubeconfig.fetch' },
          { id: 'istio', uses: 'istio.install' },
        ],
      }),
    );
    const pinned = await run(check, otherRelease);
    expect(stepsById(pinned).istio!.error).toMatch(
      /^LabConfigError: the cluster runs Istio 1\.28\.3, but \S+existing-other-release\.yaml pins 1\.27\.0$/,
    );

    // A step that asks for a mesh-wide setting the cluster has not: refused, naming both, and nothing changes.
    const meshWide = await writePlaybook(
      'istio-mesh-wide',
      stringify({
        name: 'istio-mesh-wide',
        steps: [
          { id: 'kubeconfig', uses: 'kubeconfig.fetch' },
          {
            id: 'istio',
            uses: 'istio.install',
            with: { set: { 'meshConfig.outboundTrafficPolicy.mode': 'REGISTRY_ONLY' } },
          },
          { id: 'after', uses: 'kube.namespace' },
        ],
      }),
    );
    const result = await run(meshWide, await writeExisting('existing'));
    expect(result.status).toBe('failed');
    expect(stepsById(result).istio!.error).toMatch(
      /^LabConfigError: the cluster's mesh config \(istio\) has outboundTrafficPolicy\.mode ALLOW_ANY, and the scenario needs REGISTRY_ONLY \(\S+existing\.yaml: cluster\.installIstio is false, so istio\.install checks the Istio installed; it changes nothing mesh-wide\)$/,
    );
    // Failed at once (a lab file's problem is not retried), and nothing after it ran.
    expect(stepsById(result).istio!.attempts).toBe(1);
    expect(stepsById(result).after!.status).toBe('pending');
    expect(await meshConfig()).toEqual({
      outboundTrafficPolicy: { mode: 'ALLOW_ANY' },
      accessLogFile: '/dev/stdout',
    });
  }, 180_000);
});
