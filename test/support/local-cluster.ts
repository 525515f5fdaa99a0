/**
 * A real control plane for one test file (sim/lib/control-plane.ts): its own temporary folder, the
 * admin kubeconfig, the real kubectl bound to it, and cleanup that stops istiod and the control plane
 * and removes the folder.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { projectRoot } from '../../src/config.js';
import { ensureGoTools } from '../../src/lab/go-tools.js';
import { KUBE_TOOLS } from '../../src/lab/kube-tools.js';
import { destroyControlPlane, startControlPlane } from '../../sim/lib/control-plane.js';
import { stopIstiod } from '../../sim/lib/istiod.js';

export interface LocalCluster {
  dir: string;
  simState: string;
  kubeconfig: string;
  /** The real kubectl binary. */
  kubectlBin: string;
  /** Runs kubectl against the cluster; never throws on a non-zero exit. */
  kubectl(args: string[], input?: string): Promise<{ exitCode: number; stdout: string; stderr: string }>;
  /** `kubectl get ARGS -o json`, parsed; throws when kubectl fails. */
  kubectlJson(args: string[]): Promise<unknown>;
  /** What the start reported. */
  messages: string[];
  /** Starts the control plane again on the same data, as after a reboot. */
  restart(): Promise<void>;
  close(): Promise<void>;
}

export async function localCluster(): Promise<LocalCluster> {
  const kubectlBin = path.join(await ensureGoTools(projectRoot(), KUBE_TOOLS), 'kubectl');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tunnel-lab-cluster-'));
  const simState = path.join(dir, 'sim');
  const kubeconfig = path.join(dir, 'vms', 'k8s', 'var', 'lib', 'k0s', 'pki', 'admin.conf');
  const start = () => startControlPlane({ simState, kubeconfig, nodeName: 'k8s', nodeIp: '192.168.56.20' });
  const { messages } = await start();
  const kubectl = async (args: string[], input?: string) => {
    const result = await execa(kubectlBin, ['--kubeconfig', kubeconfig, ...args], { reject: false, input });
    return { exitCode: result.exitCode ?? 1, stdout: result.stdout, stderr: result.stderr };
  };
  return {
    dir,
    simState,
    kubeconfig,
    kubectlBin,
    kubectl,
    async kubectlJson(args) {
      const result = await kubectl(['get', ...args, '-o', 'json']);
      if (result.exitCode !== 0) throw new Error(`kubectl get ${args.join(' ')}: ${result.stderr}`);
      return JSON.parse(result.stdout) as unknown;
    },
    messages,
    async restart() {
      await start();
    },
    async close() {
      await stopIstiod(simState);
      await destroyControlPlane(simState);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
