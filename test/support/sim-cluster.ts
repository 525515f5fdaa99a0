/**
 * A simulated lab whose cluster answers: the `k8s` and `external-proxy` machines recorded as running
 * (as `vagrant up` leaves them, without starting their sshd, which these tests do not use) and a
 * kubeconfig where kubeconfig.fetch puts it.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { stringify } from 'yaml';
import { MACHINES, type MachineTable } from '../../sim/lib/machines.js';
import { updateState } from '../../sim/lib/state.js';
import { simLab, type LabYaml, type SimLab } from './sim-lab.js';

/** Records machines as running in the vagrant stand-in's table. */
export async function markRunning(lab: SimLab, names: string[]): Promise<void> {
  await mkdir(lab.simState, { recursive: true });
  await updateState<MachineTable, void>(lab.simState, MACHINES, {}, (table) => {
    for (const name of names) table[name] = { state: 'running', provider: 'sim' };
  });
}

/** Writes the kubeconfig kubeconfig.fetch would: k0s's admin.conf shape, server `server`. */
export async function writeKubeconfig(lab: SimLab, server = lab.def.network.apiServer): Promise<string> {
  const file = path.join(lab.labState, 'kubeconfig');
  await writeFile(
    file,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'k0s', cluster: { server, 'certificate-authority-data': 'Cg==' } }],
      contexts: [{ name: 'Default', context: { cluster: 'k0s', namespace: 'default', user: 'admin' } }],
      'current-context': 'Default',
      users: [{ name: 'admin', user: { 'client-certificate-data': 'Cg==', 'client-key-data': 'Cg==' } }],
    }),
    { mode: 0o600 },
  );
  return file;
}

/**
 * A simulated lab with a reachable cluster. `configDelay` overrides how long Istio config takes to reach
 * the proxies (the lab file's default otherwise); `0s` for tests about other things than propagation.
 * `edit` changes the copy of the lab file further.
 */
export async function clusterLab(
  options: { configDelay?: string; edit?: (def: LabYaml) => void } = {},
): Promise<SimLab> {
  const lab = await simLab(
    options.configDelay === undefined && !options.edit
      ? undefined
      : (def) => {
          if (options.configDelay !== undefined) def.sim.configDelay = options.configDelay;
          options.edit?.(def);
        },
  );
  await markRunning(lab, ['k8s', 'external-proxy']);
  await writeKubeconfig(lab);
  return lab;
}
