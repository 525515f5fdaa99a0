/**
 * The local lab's `k8s` machine runs a real control plane: etcd, kube-apiserver,
 * kube-controller-manager and kube-scheduler of Kubernetes v1.36.1 built from their modules, with KWOK
 * playing the node. These tests drive it with the real kubectl: a Deployment rolls out to pods that
 * turn Ready, Istio's own CRDs make the API server refuse what Istio refuses, and a component that dies
 * takes the others down with it instead of leaving half a cluster running.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { parse } from 'yaml';
import { projectRoot } from '../src/config.js';
import { ensureGoTools } from '../src/lab/go-tools.js';
import { ISTIOD_TOOLS } from '../src/lab/kube-tools.js';
import { CONTROL_PLANE, runningControlPlane, stopControlPlane } from '../sim/lib/control-plane.js';
import { descendants, isAlive } from '../sim/lib/procs.js';
import { readState } from '../sim/lib/state.js';
import { localCluster, type LocalCluster } from './support/local-cluster.js';

let cluster: LocalCluster;
let simState: string;
let kubeconfig: string;
let istiodTools: string;

const kubectl = (args: string[], input?: string) => cluster.kubectl(args, input);

beforeAll(async () => {
  istiodTools = await ensureGoTools(projectRoot(), ISTIOD_TOOLS);
  cluster = await localCluster();
  ({ simState, kubeconfig } = cluster);
  expect(cluster.messages.join('\n')).toMatch(
    /Kubernetes v1\.36\.1 control plane on https:\/\/127\.0\.0\.1:\d+/,
  );
}, 900_000);

afterAll(async () => {
  await cluster?.close();
}, 60_000);

test('kubectl talks to a real v1.36.1 API server through the machine kubeconfig', async () => {
  const version = await kubectl(['version', '-o', 'json']);
  expect(version.exitCode).toBe(0);
  expect(
    (JSON.parse(version.stdout) as { serverVersion: { gitVersion: string } }).serverVersion.gitVersion,
  ).toBe('v1.36.1');
  const config = parse(await readFile(kubeconfig, 'utf8')) as { users: { user: Record<string, string> }[] };
  expect(Object.keys(config.users[0]!.user).sort()).toEqual(['client-certificate-data', 'client-key-data']);
  const nodes = await kubectl([
    'get',
    'nodes',
    '-o',
    'jsonpath={.items[*].metadata.name} {.items[*].status.conditions[?(@.type=="Ready")].status}',
  ]);
  expect(nodes.stdout).toBe('k8s True');
});

test('a Deployment rolls out: the controller-manager makes its pod, the scheduler places it, KWOK runs it', async () => {
  const create = await kubectl([
    'create',
    'deployment',
    'sleep',
    '--image=curlimages/curl',
    '--',
    'sleep',
    '1d',
  ]);
  expect(create.exitCode).toBe(0);
  const rollout = await kubectl(['rollout', 'status', 'deployment/sleep', '--timeout=60s']);
  expect(rollout.stdout).toContain('successfully rolled out');
  const wait = await kubectl(['wait', '--for=condition=Ready', 'pod', '-l', 'app=sleep', '--timeout=30s']);
  expect(wait.exitCode).toBe(0);
  const pod = await kubectl([
    'get',
    'pods',
    '-l',
    'app=sleep',
    '-o',
    'jsonpath={.items[0].spec.nodeName} {.items[0].status.podIP}',
  ]);
  expect(pod.stdout).toMatch(/^k8s 10\.244\.\d+\.\d+$/);
}, 120_000);

test("Istio's CRDs make the API server refuse what Istio refuses, with Istio's messages", async () => {
  const crds = path.join(istiodTools, 'crd-all.gen.yaml');
  const apply = await kubectl(['apply', '--server-side', '-f', crds]);
  expect(apply.exitCode).toBe(0);
  expect(
    (await kubectl(['wait', '--for=condition=Established', 'crd', '--all', '--timeout=60s'])).exitCode,
  ).toBe(0);
  const good = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: google}
spec:
  hosts: [www.google.com]
  ports: [{number: 443, name: tls, protocol: TLS}]
  resolution: DNS
`;
  expect((await kubectl(['apply', '-f', '-'], good)).stdout).toContain(
    'serviceentry.networking.istio.io/google created',
  );
  const bad = good.replace('google}', 'bad}').replace('number: 443', 'number: 70000');
  const refused = await kubectl(['apply', '-f', '-'], bad);
  expect(refused.exitCode).not.toBe(0);
  expect(refused.stderr).toContain(
    'The ServiceEntry "bad" is invalid: spec.ports[0].number: Invalid value: 70000: port must be between 1-65535',
  );
  // A rule of Istio's own (a CEL validation in its CRD), not only an OpenAPI type.
  const twice = good
    .replace('google}', 'twice}')
    .replace('ports: [', 'ports: [{number: 443, name: tls2, protocol: TLS}, ');
  const duplicate = await kubectl(['apply', '-f', '-'], twice);
  expect(duplicate.exitCode).not.toBe(0);
  expect(duplicate.stderr).toMatch(
    /The ServiceEntry "twice" is invalid: spec\.ports: Invalid value: .*port number/i,
  );
}, 120_000);

test('a component that dies stops the rest; nothing of the control plane keeps running', async () => {
  const before = await kubectl(['get', 'pods', '-A', '-o', 'jsonpath={.items[*].metadata.name}']);
  const record = runningControlPlane(simState)!;
  expect(record).toMatchObject({ pid: expect.any(Number), kubeconfig: expect.any(String) });
  const tree = descendants(record.pid!);
  expect(tree.length).toBeGreaterThanOrEqual(5);
  const scheduler = await execa('pgrep', ['-f', '-P', String(record.pid), 'kube-scheduler'], {
    reject: false,
  });
  process.kill(Number(scheduler.stdout.trim().split('\n')[0]), 'SIGKILL');
  const deadline = Date.now() + 20_000;
  while ([record.pid!, ...tree].some(isAlive) && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 100));
  expect([record.pid!, ...tree].filter(isAlive)).toEqual([]);
  expect(runningControlPlane(simState)).toBeUndefined();
  const log = await readFile(path.join(record.dir, 'supervisor.log'), 'utf8');
  expect(log).toMatch(/control plane: kube-scheduler exited \(SIGKILL\)/);

  // Started again, the cluster is still there (etcd's data is the machine's disk), and the pods start
  // again as after a reboot, each with an address of its own.
  await cluster.restart();
  expect((await kubectl(['get', 'serviceentry', 'google', '-o', 'name'])).stdout).toBe(
    'serviceentry.networking.istio.io/google',
  );
  await kubectl(['create', 'deployment', 'second', '--image=curlimages/curl', '--', 'sleep', '1d']);
  expect((await kubectl(['rollout', 'status', 'deployment/second', '--timeout=60s'])).exitCode).toBe(0);
  expect(
    (await kubectl(['wait', '--for=condition=Ready', 'pod', '--all', '-A', '--timeout=30s'])).exitCode,
  ).toBe(0);
  const after = await kubectl(['get', 'pods', '-A', '-o', 'jsonpath={.items[*].metadata.name}']);
  expect(after.stdout.split(' ')).toEqual(expect.arrayContaining(before.stdout.split(' ')));
  const ips = (await kubectl(['get', 'pods', '-A', '-o', 'jsonpath={.items[*].status.podIP}'])).stdout.split(
    ' ',
  );
  expect(ips.length).toBeGreaterThanOrEqual(2);
  expect(new Set(ips).size).toBe(ips.length);
  await stopControlPlane(simState);
  expect(runningControlPlane(simState)).toBeUndefined();
  expect(readState<{ pid?: number }>(simState, CONTROL_PLANE, {}).pid).toBeUndefined();
  expect(existsSync(path.join(simState, 'control-plane', 'etcd'))).toBe(true);
}, 180_000);
