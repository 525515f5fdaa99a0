/**
 * The stand-in kubectl and istioctl at the command-line boundary: flags in any order, the real tools'
 * output formats, error messages and exit codes. Every check runs twice: with the stand-ins as processes
 * of their own, and answered by the lab's stand-in host (sim/standin-host.ts), which must not differ.
 */
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { stringify } from 'yaml';
import type { ToolResult } from '../src/lab/runtime.js';
import type { SimLab } from './support/sim-lab.js';
import { clusterLab } from './support/sim-cluster.js';
import { ensureStandinHost, standinHostFiles, stopStandinHost } from '../sim/lib/standin-host.js';

describe.each([
  ['as processes of their own', false],
  ['through the stand-in host', true],
])('%s', (_mode, viaHost) => {
  let lab: SimLab;
  let kubeconfig: string;

  beforeAll(async () => {
    lab = await clusterLab();
    kubeconfig = path.join(lab.labState, 'kubeconfig');
    // The machines are only recorded as running here: the host starts as `vagrant up` would start it.
    if (viaHost) await ensureStandinHost(lab.simState);
  });
  afterAll(async () => {
    if (viaHost) await stopStandinHost(lab.simState);
    await lab?.close();
  });

  const kubectl = (args: string[], input?: string): Promise<ToolResult> =>
    lab.runtime.tool('kubectl', args, { check: false, input });
  const istioctl = (args: string[]): Promise<ToolResult> =>
    lab.runtime.tool('istioctl', args, { check: false });

  async function manifest(name: string, docs: unknown[]): Promise<string> {
    const file = path.join(lab.stateRoot, name);
    await writeFile(file, docs.map((d) => stringify(d)).join('---\n'));
    return file;
  }

  describe('stand-in kubectl', () => {
    it('needs a kubeconfig that leads to the lab API server', async () => {
      expect(await kubectl(['get', 'pods', '--kubeconfig', '/nope/config'])).toMatchObject({
        exitCode: 1,
        stderr: 'error: stat /nope/config: no such file or directory',
      });
      expect(await kubectl(['get', 'pods'])).toMatchObject({
        exitCode: 1,
        stderr:
          'The connection to the server localhost:8080 was refused - did you specify the right host or port?',
      });
      const elsewhere = path.join(lab.stateRoot, 'elsewhere.conf');
      await writeFile(
        elsewhere,
        stringify({
          clusters: [{ name: 'c', cluster: { server: 'https://127.0.0.1:6444' } }],
          contexts: [{ name: 'x', context: { cluster: 'c' } }],
          'current-context': 'x',
        }),
      );
      expect(await kubectl([`--kubeconfig=${elsewhere}`, 'get', 'pods'])).toMatchObject({
        exitCode: 1,
        stderr: 'Unable to connect to the server: dial tcp 127.0.0.1:6444: connect: connection refused',
      });
      expect(await kubectl(['version', '--client'])).toMatchObject({
        exitCode: 0,
        stdout: expect.stringMatching(/^Client Version: v1\./),
      });
    });

    it('rejects unknown commands and flags with a usage line', async () => {
      expect(await kubectl(['--kubeconfig', kubeconfig, 'frobnicate'])).toMatchObject({
        exitCode: 1,
        stderr: `error: unknown command "frobnicate" for "kubectl"\nRun 'kubectl --help' for usage.`,
      });
      expect(await kubectl(['get', 'pods', '--kubeconfig', kubeconfig, '--frob'])).toMatchObject({
        exitCode: 1,
        stderr: "error: unknown flag: --frob\nSee 'kubectl --help' for usage.",
      });
    });

    it('applies multi-document files: created, unchanged, configured, in any flag order', async () => {
      const cm = (value: string) => ({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'c1' },
        data: { k: value },
      });
      const file = await manifest('cm.yaml', [
        cm('a'),
        { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'extra' } },
      ]);
      expect((await kubectl(['apply', '-f', file, '--kubeconfig', kubeconfig])).stdout).toBe(
        'configmap/c1 created\nnamespace/extra created',
      );
      expect(
        (await kubectl(['--kubeconfig', kubeconfig, '-n', 'default', 'apply', `--filename=${file}`])).stdout,
      ).toBe('configmap/c1 unchanged\nnamespace/extra unchanged');
      const changed = await manifest('cm2.yaml', [cm('b')]);
      expect((await kubectl(['--kubeconfig', kubeconfig, 'apply', '-f', changed])).stdout).toBe(
        'configmap/c1 configured',
      );
      expect(
        (await kubectl(['--kubeconfig', kubeconfig, 'get', 'cm', 'c1', '-ojsonpath={.data.k}'])).stdout,
      ).toBe('b');
      expect(
        await kubectl(['--kubeconfig', kubeconfig, '--namespace=extra', 'apply', '-f', changed]),
      ).toMatchObject({ exitCode: 0 });
      const mismatch = await manifest('cm3.yaml', [
        { ...cm('c'), metadata: { name: 'c1', namespace: 'default' } },
      ]);
      expect(
        await kubectl(['--kubeconfig', kubeconfig, '-n', 'extra', 'apply', '-f', mismatch]),
      ).toMatchObject({
        exitCode: 1,
        stderr: expect.stringContaining(
          `the namespace from the provided object "default" does not match the namespace "extra"`,
        ),
      });
      expect(
        await kubectl(['--kubeconfig', kubeconfig, 'apply', '-f', path.join(lab.stateRoot, 'none.yaml')]),
      ).toMatchObject({
        exitCode: 1,
        stderr: `error: the path "${path.join(lab.stateRoot, 'none.yaml')}" does not exist`,
      });
    });

    it('reads manifests from stdin, as in create --dry-run=client -o yaml | apply -f -', async () => {
      const created = await kubectl([
        '--kubeconfig',
        kubeconfig,
        'create',
        'configmap',
        'lit',
        '--from-literal=a=1',
        '--dry-run=client',
        '-o',
        'yaml',
      ]);
      expect(created.stdout).toContain('kind: ConfigMap');
      expect((await kubectl(['--kubeconfig', kubeconfig, 'apply', '-f', '-'], created.stdout)).stdout).toBe(
        'configmap/lit created',
      );
    });

    it('reports missing objects as the API server does', async () => {
      expect(
        await kubectl([
          '--kubeconfig',
          kubeconfig,
          '-n',
          'istio-system',
          'get',
          'configmap',
          'nope',
          '-o',
          'jsonpath={.data.x}',
        ]),
      ).toMatchObject({
        exitCode: 1,
        stderr: 'Error from server (NotFound): configmaps "nope" not found',
      });
      expect(
        await kubectl(['--kubeconfig', kubeconfig, 'rollout', 'status', 'deployment/nope', '--timeout=5s']),
      ).toMatchObject({
        exitCode: 1,
        stderr: 'Error from server (NotFound): deployments.apps "nope" not found',
      });
      expect(await kubectl(['--kubeconfig', kubeconfig, 'get', 'frobs'])).toMatchObject({
        exitCode: 1,
        stderr: 'error: the server doesn\'t have a resource type "frobs"',
      });
    });

    it('refuses to change a label without --overwrite', async () => {
      await kubectl(['--kubeconfig', kubeconfig, 'label', 'ns', 'extra', 'team=a']);
      expect(await kubectl(['--kubeconfig', kubeconfig, 'label', 'namespace/extra', 'team=b'])).toMatchObject(
        {
          exitCode: 1,
          stderr: "error: 'team' already has a value (a), and --overwrite is false",
        },
      );
    });

    it('waits in rollout status until the pod can start, or times out', async () => {
      const deployment = await manifest('dep.yaml', [
        {
          apiVersion: 'apps/v1',
          kind: 'Deployment',
          metadata: { name: 'web' },
          spec: {
            selector: { matchLabels: { app: 'web' } },
            template: {
              metadata: { labels: { app: 'web' } },
              spec: {
                containers: [
                  { name: 'web', image: 'nginx', volumeMounts: [{ name: 'cfg', mountPath: '/cfg' }] },
                ],
                volumes: [{ name: 'cfg', configMap: { name: 'web-cfg' } }],
              },
            },
          },
        },
      ]);
      await kubectl(['--kubeconfig', kubeconfig, 'apply', '-f', deployment]);
      const timedOut = await kubectl([
        '--kubeconfig',
        kubeconfig,
        'rollout',
        'status',
        'deploy/web',
        '--timeout=300ms',
      ]);
      expect(timedOut).toMatchObject({
        exitCode: 1,
        stdout: 'Waiting for deployment "web" rollout to finish: 0 of 1 updated replicas are available...',
        stderr: 'error: timed out waiting for the condition',
      });
      const waiting = kubectl([
        '--kubeconfig',
        kubeconfig,
        'rollout',
        'status',
        'deployment',
        'web',
        '--timeout=20s',
      ]);
      await kubectl(['--kubeconfig', kubeconfig, 'create', 'configmap', 'web-cfg', '--from-literal=x=y']);
      expect(await waiting).toMatchObject({
        exitCode: 0,
        stdout: expect.stringMatching(/deployment "web" successfully rolled out$/),
      });
      const pods = await kubectl(['--kubeconfig', kubeconfig, 'get', 'pods', '-l', 'app=web']);
      expect(pods.stdout).toMatch(
        /^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\nweb-\w{10}-\w{5}\s+1\/1\s+Running\s+0\s+\d+s$/,
      );
    });

    it('runs curl in containers, passing its exit code on, and nothing else', async () => {
      const pod = (
        await kubectl([
          '--kubeconfig',
          kubeconfig,
          'get',
          'pods',
          '-l',
          'app=web',
          '-o',
          'jsonpath={.items[*].metadata.name}',
        ])
      ).stdout;
      expect(await kubectl(['--kubeconfig', kubeconfig, 'exec', pod, '--', 'sh', '-c', 'id'])).toMatchObject({
        exitCode: 126,
      });
      expect(
        await kubectl(['--kubeconfig', kubeconfig, 'exec', pod, '--', 'curl', '--frob', 'https://x.example']),
      ).toMatchObject({
        exitCode: 2,
        stderr: expect.stringContaining('curl: option --frob: is unknown'),
      });
      // No Istio here yet: the pod goes out directly.
      const ok = await kubectl([
        '--kubeconfig',
        kubeconfig,
        'exec',
        pod,
        '-c',
        'web',
        '--',
        'curl',
        '-sSo',
        '/dev/null',
        '-w',
        '%{http_code}\\n',
        'https://www.google.com',
      ]);
      expect(ok).toMatchObject({ exitCode: 0, stdout: '200' });
      const unresolved = await kubectl([
        '--kubeconfig',
        kubeconfig,
        'exec',
        pod,
        '--',
        'curl',
        '-sS',
        'https://nope.default.svc.cluster.local',
      ]);
      expect(unresolved).toMatchObject({
        exitCode: 6,
        stderr:
          'curl: (6) Could not resolve host: nope.default.svc.cluster.local\ncommand terminated with exit code 6',
      });
    });
  });

  describe('stand-in istioctl', () => {
    it('asks for confirmation without -y, and knows no verify-install', async () => {
      expect(await istioctl(['--kubeconfig', kubeconfig, 'install', '--set', 'profile=demo'])).toMatchObject({
        exitCode: 1,
        stdout: expect.stringContaining('Cancelled.'),
      });
      expect(await istioctl(['verify-install', '-c', kubeconfig])).toMatchObject({
        exitCode: 1,
        stderr: `Error: unknown command "verify-install" for "istioctl"\nRun 'istioctl --help' for usage.`,
      });
      expect(await istioctl(['install', '-y', '--set', 'oops', '-c', kubeconfig])).toMatchObject({
        exitCode: 1,
      });
    });

    it('installs with the settings, serves the CRDs, and reports istiod conflicts through push_status', async () => {
      const out = await istioctl([
        'install',
        '--set',
        'profile=demo',
        '-y',
        '--kubeconfig',
        kubeconfig,
        '--set',
        'meshConfig.outboundTrafficPolicy.mode=REGISTRY_ONLY',
      ]);
      expect(out).toMatchObject({
        exitCode: 0,
        stdout: expect.stringMatching(
          /✔ Egress gateways installed 🛫\n✔ Ingress gateways installed 🛬\n✔ Installation complete$/,
        ),
      });
      expect((await istioctl(['version', '--kubeconfig', kubeconfig])).stdout).toMatch(
        /^client version: 1\.\d+\.\d+\ncontrol plane version: 1\.\d+\.\d+/,
      );

      const status = async () =>
        (
          await kubectl([
            '--kubeconfig',
            kubeconfig,
            '-n',
            'istio-system',
            'exec',
            'deploy/istiod',
            '--',
            'curl',
            '-s',
            'localhost:15014/debug/push_status',
          ])
        ).stdout;
      await kubectl(['--kubeconfig', kubeconfig, 'label', 'namespace', 'default', 'istio-injection=enabled']);
      await kubectl(['--kubeconfig', kubeconfig, 'rollout', 'restart', 'deployment/web']);
      expect(JSON.parse(await status())).toEqual({});
      const hosts = ['www.google.com', 'www.wikipedia.org'];
      const file = await manifest('poc-vs.yaml', [
        ...hosts.map((h) => ({
          apiVersion: 'networking.istio.io/v1alpha3',
          kind: 'ServiceEntry',
          metadata: { name: h },
          spec: { hosts: [h], ports: [{ number: 443, name: 'tls', protocol: 'TLS' }], resolution: 'DNS' },
        })),
        {
          apiVersion: 'networking.istio.io/v1alpha3',
          kind: 'VirtualService',
          metadata: { name: 'both' },
          spec: {
            hosts,
            gateways: ['mesh'],
            tls: [
              {
                match: [{ gateways: ['mesh'], port: 443, sniHosts: hosts }],
                route: [
                  {
                    destination: {
                      host: 'istio-egressgateway.istio-system.svc.cluster.local',
                      port: { number: 443 },
                    },
                  },
                ],
              },
            ],
          },
        },
      ]);
      await kubectl(['--kubeconfig', kubeconfig, 'apply', '-f', file]);
      // istiod sees the new config only after the lab's configDelay, as a real one does after its push.
      type Status = Record<string, Record<string, { proxy: string; message: string }>>;
      expect(JSON.parse(await status())).toEqual({});
      let conflicts: Status = {};
      for (let i = 0; i < 50 && Object.keys(conflicts).length === 0; i++) {
        await new Promise((resolve) => setTimeout(resolve, 200));
        conflicts = JSON.parse(await status()) as Status;
      }
      expect(
        Object.values(conflicts.pilot_conflict_outbound_listener_tcp_over_current_tcp!)[0],
      ).toMatchObject({
        proxy: expect.stringMatching(/^web-\w+-\w+\.default$/),
        message: 'Listener=0.0.0.0_443 Accepted=TCP Rejected=TCP (www.wikipedia.org)',
      });
    });
  });

  it(viaHost ? 'was answered by the stand-in host' : 'ran each call as a process of its own', () => {
    const log = standinHostFiles(lab.simState).log;
    const answered = existsSync(log)
      ? readFileSync(log, 'utf8')
          .split('\n')
          .filter((line) => / (kubectl|istioctl) \S* → \d+ \(/.test(line))
      : [];
    if (viaHost) expect(answered.length).toBeGreaterThan(40);
    else expect(answered).toEqual([]);
  });
});
