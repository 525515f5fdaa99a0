/**
 * The `k8s` machine of the local lab (labs/local.yaml): a real Kubernetes control plane on loopback
 * instead of k0s on a VM. etcd, kube-apiserver, kube-controller-manager, kube-scheduler and KWOK run
 * under one supervising process (sim/supervisor.ts); one KWOK node stands for the machine's kubelet,
 * so Deployments become pods that turn Running and Ready, but no container ever runs.
 *
 * Its files live in `<sim state>/control-plane/`: certificates made with openssl (a cluster CA, the API
 * server's serving certificate, an admin in `system:masters`, the service-account key pair), etcd's data
 * and one log per component. The admin kubeconfig is written where the machine's lab file says k0s
 * keeps it, so that kubeconfig.fetch reads it over ssh as on a real VM.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { stringify } from 'yaml';
import { projectRoot } from '../../src/config.js';
import { ensureGoTools } from '../../src/lab/go-tools.js';
import { KUBE_TOOLS, KUBE_VERSION } from '../../src/lab/kube-tools.js';
import type { SupervisorConfig } from '../supervisor.js';
import { CONTROL_PLANE } from './machines.js';
import { selfSigned, signedBy } from './openssl.js';
import { freePort } from './procs.js';
import { readState } from './state.js';
import { runningSupervised, startSupervised, stopSupervised, type SupervisedRecord } from './supervised.js';

export { CONTROL_PLANE };

/** `<sim state>/control-plane.json`. */
export interface ControlPlaneRecord extends SupervisedRecord {
  /** The API server's port on 127.0.0.1. */
  apiPort: number;
  /** The admin kubeconfig on the host (the machine's copy is `files.kubeconfig`). */
  kubeconfig: string;
  /** Where the binaries are. */
  tools: string;
  version: string;
}

export interface ControlPlaneOptions {
  simState: string;
  /** Where the machine keeps its admin kubeconfig (k0s: /var/lib/k0s/pki/admin.conf). */
  kubeconfig: string;
  /** The KWOK node standing for the machine's kubelet. */
  nodeName: string;
  nodeIp: string;
  log?: (line: string) => void;
}

/** The service network, as k0s's default. */
const SERVICE_CIDR = '10.96.0.0/12';
const POD_CIDR = '10.244.0.0/16';

export function controlPlaneDir(simState: string): string {
  return path.join(simState, 'control-plane');
}

/** The record of a running control plane, else undefined. */
export function runningControlPlane(simState: string): ControlPlaneRecord | undefined {
  return runningSupervised<ControlPlaneRecord>(simState, CONTROL_PLANE);
}

async function makeCertificates(dir: string): Promise<void> {
  const file = (name: string) => path.join(dir, name);
  if (existsSync(file('admin.crt'))) return;
  await selfSigned({
    subject: '/CN=kubernetes-ca',
    days: 365,
    keyOut: file('ca.key'),
    certOut: file('ca.crt'),
  });
  const ca = { cert: file('ca.crt'), key: file('ca.key') };
  await signedBy(ca, {
    subject: '/CN=kube-apiserver',
    days: 365,
    keyOut: file('apiserver.key'),
    certOut: file('apiserver.crt'),
    csrOut: file('apiserver.csr'),
    extensions: [
      'subjectAltName=DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,' +
        'DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1,IP:10.96.0.1',
    ],
  });
  await signedBy(ca, {
    subject: '/O=system:masters/CN=admin',
    days: 365,
    keyOut: file('admin.key'),
    certOut: file('admin.crt'),
    csrOut: file('admin.csr'),
  });
  // The service-account signing key: an RSA pair, as the API server and controller-manager read it.
  await execa('openssl', ['genrsa', '-out', file('sa.key'), '2048']);
  await execa('openssl', ['rsa', '-in', file('sa.key'), '-pubout', '-out', file('sa.pub')]);
}

/** The admin kubeconfig, certificates inline (it is copied to other machines and folders). */
async function adminKubeconfig(dir: string, apiPort: number): Promise<string> {
  const b64 = async (name: string) => (await readFile(path.join(dir, name))).toString('base64');
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: 'local',
        cluster: {
          server: `https://127.0.0.1:${apiPort}`,
          'certificate-authority-data': await b64('ca.crt'),
        },
      },
    ],
    users: [
      {
        name: 'admin',
        user: {
          'client-certificate-data': await b64('admin.crt'),
          'client-key-data': await b64('admin.key'),
        },
      },
    ],
    contexts: [{ name: 'Default', context: { cluster: 'local', namespace: 'default', user: 'admin' } }],
    'current-context': 'Default',
    preferences: {},
  });
}

function processes(
  tools: string,
  dir: string,
  ports: { etcd: number; etcdPeer: number; api: number },
  options: ControlPlaneOptions,
): SupervisorConfig['processes'] {
  const bin = (name: string) => path.join(tools, name);
  const file = (name: string) => path.join(dir, name);
  const kubeconfig = file('admin.conf');
  const etcdUrl = `http://127.0.0.1:${ports.etcd}`;
  const peerUrl = `http://127.0.0.1:${ports.etcdPeer}`;
  return [
    {
      name: 'etcd',
      binary: bin('etcd'),
      args: [
        ...['--name', 'k8s', '--data-dir', file('etcd'), '--log-level', 'warn'],
        ...['--listen-client-urls', etcdUrl, '--advertise-client-urls', etcdUrl],
        ...['--listen-peer-urls', peerUrl, '--initial-advertise-peer-urls', peerUrl],
        ...['--initial-cluster', `k8s=${peerUrl}`],
      ],
      ready: { port: ports.etcd },
    },
    {
      name: 'kube-apiserver',
      binary: bin('kube-apiserver'),
      args: [
        `--etcd-servers=${etcdUrl}`,
        '--bind-address=127.0.0.1',
        '--advertise-address=127.0.0.1',
        `--secure-port=${ports.api}`,
        `--tls-cert-file=${file('apiserver.crt')}`,
        `--tls-private-key-file=${file('apiserver.key')}`,
        `--client-ca-file=${file('ca.crt')}`,
        '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
        `--service-account-key-file=${file('sa.pub')}`,
        `--service-account-signing-key-file=${file('sa.key')}`,
        `--service-cluster-ip-range=${SERVICE_CIDR}`,
        '--authorization-mode=Node,RBAC',
        // No kubelet and no real node network: nothing to reconcile the API server's own endpoints to.
        '--endpoint-reconciler-type=none',
        // Webhooks and aggregated APIs are reached at their endpoints' addresses, not a service network.
        '--enable-aggregator-routing=true',
        '--profiling=false',
      ],
      ready: { url: `https://127.0.0.1:${ports.api}/readyz` },
    },
    {
      name: 'kube-controller-manager',
      binary: bin('kube-controller-manager'),
      args: [
        `--kubeconfig=${kubeconfig}`,
        `--authentication-kubeconfig=${kubeconfig}`,
        `--authorization-kubeconfig=${kubeconfig}`,
        '--leader-elect=false',
        '--secure-port=0',
        `--service-account-private-key-file=${file('sa.key')}`,
        `--root-ca-file=${file('ca.crt')}`,
        `--service-cluster-ip-range=${SERVICE_CIDR}`,
        // KWOK assigns pod addresses itself.
        '--controllers=*,-nodeipam',
      ],
      ready: { url: `https://127.0.0.1:${ports.api}/readyz` },
    },
    {
      name: 'kube-scheduler',
      binary: bin('kube-scheduler'),
      args: [`--kubeconfig=${kubeconfig}`, '--leader-elect=false', '--secure-port=0'],
      ready: { url: `https://127.0.0.1:${ports.api}/readyz` },
    },
    {
      name: 'kwok',
      binary: bin('kwok'),
      args: [
        `--kubeconfig=${kubeconfig}`,
        '--manage-all-nodes=true',
        `--config=${file('kwok-stages.yaml')}`,
        `--cidr=${POD_CIDR}`,
        `--node-ip=${options.nodeIp}`,
      ],
      ready: { url: `https://127.0.0.1:${ports.api}/readyz` },
    },
  ];
}

/** The node KWOK manages in place of the machine's kubelet. */
function nodeManifest(name: string): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name,
      labels: {
        'kubernetes.io/hostname': name,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
        'node-role.kubernetes.io/control-plane': '',
        type: 'kwok',
      },
      annotations: { 'kwok.x-k8s.io/node': 'fake', 'node.alpha.kubernetes.io/ttl': '0' },
    },
    status: {
      allocatable: { cpu: '4', memory: '8Gi', pods: '110' },
      capacity: { cpu: '4', memory: '8Gi', pods: '110' },
    },
  });
}

/**
 * Starts the control plane (stopping an earlier one of this lab first; etcd's data stays, as a VM's disk
 * does), registers the node and writes the admin kubeconfig. Builds the binaries on first use.
 */
export async function startControlPlane(options: ControlPlaneOptions): Promise<{ messages: string[] }> {
  const messages: string[] = [];
  const log = options.log ?? ((line: string) => messages.push(line));
  mkdirSync(options.simState, { recursive: true });
  await stopControlPlane(options.simState);
  const tools = await ensureGoTools(projectRoot(), KUBE_TOOLS, log);
  const dir = controlPlaneDir(options.simState);
  const rebooted = existsSync(path.join(dir, 'etcd'));
  mkdirSync(dir, { recursive: true });
  await makeCertificates(dir);
  const stages = Object.keys(KUBE_TOOLS.files ?? {})
    .filter((name) => name.startsWith('stage-'))
    .map((name) => readFileSync(path.join(tools, name), 'utf8'));
  writeFileSync(path.join(dir, 'kwok-stages.yaml'), stages.map((s) => `---\n${s}`).join('\n'));

  const previous = readState<Partial<ControlPlaneRecord>>(options.simState, CONTROL_PLANE, {});
  const ports = { etcd: await freePort(), etcdPeer: await freePort(), api: await freePort(previous.apiPort) };
  const kubeconfig = path.join(dir, 'admin.conf');
  await writeFile(kubeconfig, await adminKubeconfig(dir, ports.api), { mode: 0o600 });
  const config: SupervisorConfig = {
    name: 'control plane',
    dir,
    tls: {
      ca: path.join(dir, 'ca.crt'),
      cert: path.join(dir, 'admin.crt'),
      key: path.join(dir, 'admin.key'),
    },
    processes: processes(tools, dir, ports, options),
  };
  await startSupervised<ControlPlaneRecord>(options.simState, CONTROL_PLANE, config, {
    apiPort: ports.api,
    kubeconfig,
    tools,
    version: KUBE_VERSION,
  });
  const kubectl = path.join(tools, 'kubectl');
  const node = await execa(kubectl, ['--kubeconfig', kubeconfig, 'apply', '-f', '-'], {
    input: nodeManifest(options.nodeName),
    reject: false,
  });
  if (node.exitCode !== 0) {
    await stopControlPlane(options.simState);
    throw new Error(`registering node ${options.nodeName} failed: ${node.stderr}`);
  }
  if (rebooted) await restartPods(kubectl, kubeconfig);
  mkdirSync(path.dirname(options.kubeconfig), { recursive: true });
  await writeFile(options.kubeconfig, await readFile(kubeconfig), { mode: 0o600 });
  messages.push(
    `k8s: Kubernetes ${KUBE_VERSION} control plane on https://127.0.0.1:${ports.api} ` +
      `(etcd, kube-apiserver, kube-controller-manager, kube-scheduler; node ${options.nodeName} played by KWOK)`,
  );
  return { messages };
}

/**
 * After a restart the pods' containers start anew, as after a node's reboot: each pod goes back to
 * Pending without an address, and KWOK starts it again with a fresh one (its address pool starts empty,
 * so the old addresses would otherwise be handed out twice).
 */
async function restartPods(kubectl: string, kubeconfig: string): Promise<void> {
  const list = await execa(kubectl, [
    ...['--kubeconfig', kubeconfig, 'get', 'pods', '-A'],
    ...['-o', 'jsonpath={range .items[*]}{.metadata.namespace} {.metadata.name}{"\\n"}{end}'],
  ]);
  for (const line of list.stdout.split('\n').filter(Boolean)) {
    const [namespace, name] = line.split(' ') as [string, string];
    await execa(kubectl, [
      ...['--kubeconfig', kubeconfig, '-n', namespace, 'patch', 'pod', name, '--subresource=status'],
      ...[
        '--type=merge',
        '-p',
        JSON.stringify({
          status: { phase: 'Pending', conditions: null, podIP: null, podIPs: null, containerStatuses: null },
        }),
      ],
    ]);
  }
}

/** Stops the control plane and everything under it; etcd's data stays. */
export async function stopControlPlane(simState: string): Promise<void> {
  await stopSupervised(simState, CONTROL_PLANE);
}

/** Stops the control plane and removes its data (the machine is destroyed). */
export async function destroyControlPlane(simState: string): Promise<void> {
  await stopControlPlane(simState);
  rmSync(controlPlaneDir(simState), { recursive: true, force: true });
  rmSync(path.join(simState, `${CONTROL_PLANE}.json`), { force: true });
}
