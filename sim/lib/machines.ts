/**
 * The simulated lab's machines as the `vagrant` stand-in keeps them, for every stand-in that needs to know
 * whether a machine runs (e.g. kubectl needs `k8s`, a probe needs `external-app`'s nginx port).
 *
 * `<sim state>/machines.json` holds one record per machine that was ever created. A machine's services
 * are daemons on 127.0.0.1 recorded as `<sim state>/<daemon>.json` (`{ "port": N, "pid": P }`): `sshd`
 * (one per lab, the shells of all machines), for the machine with role `app` its nginx under the
 * machine's own name (e.g. `external-app.json`), and for the machine with role `proxy` a real Envoy
 * (`envoy.json`) with the simulated internet behind it (`internet.json`), see proxy.ts. A machine recorded as running whose services died reports
 * `aborted`, as VirtualBox does for a VM that stopped without Vagrant.
 */
import path from 'node:path';
import { isAlive, isOurs } from './procs.js';
import { readState } from './state.js';

/** States the stand-in stores; `aborted` is only ever derived. */
export type StoredState = 'running' | 'poweroff' | 'not_created';
/** What `vagrant status` reports. */
export type MachineState = StoredState | 'aborted';

/** One machine in `machines.json`. */
export interface MachineRecord {
  state: StoredState;
  /** The provider the machine was created with. */
  provider: string;
  /** Set while a vagrant process runs an action on the machine (Vagrant's per-machine lock). */
  busy?: { pid: number; action: string; since: string };
}

/** `machines.json`: records by machine name; a machine never created has none. */
export type MachineTable = Record<string, MachineRecord>;

/** `<sim state>/<daemon>.json`: where a daemon listens on 127.0.0.1 and its pid (absent once stopped). */
export interface DaemonRecord {
  port: number;
  pid: number;
}

/** What the stand-ins need to know of a lab machine. */
export interface SimMachine {
  role?: string;
  ip?: string;
  files?: Record<string, string>;
}

/** The state file name (for `readState`/`updateState`) of the machine table. */
export const MACHINES = 'machines';
/** The state file name of the lab's sshd. */
export const SSHD = 'sshd';
/** The state file names of the external proxy's Envoy and of the simulated internet behind it. */
export const ENVOY = 'envoy';
export const INTERNET = 'internet';

/** The machine table as stored (no lock: a snapshot). */
export function readMachines(simState: string): MachineTable {
  return readState<MachineTable>(simState, MACHINES, {});
}

/** A daemon's record as stored; empty before its first start. */
export function readDaemon(simState: string, name: string): Partial<DaemonRecord> {
  return readState<Partial<DaemonRecord>>(simState, name, {});
}

/** The generated config file of a daemon, also how its processes are told apart from any other. */
export function daemonConfig(simState: string, daemon: string): string {
  if (daemon === SSHD) return path.join(simState, 'sshd', 'sshd_config');
  if (daemon === ENVOY) return path.join(simState, 'envoy', 'envoy.yaml');
  if (daemon === INTERNET) return path.join(simState, 'internet', 'internet.json');
  if (daemon === CONTROL_PLANE) return path.join(simState, 'control-plane', 'supervisor.json');
  return path.join(simState, daemon, 'nginx.conf');
}

/** True when the recorded daemon runs (and is the process we started, not a recycled pid). */
export function daemonUp(simState: string, daemon: string): boolean {
  return isOurs(readDaemon(simState, daemon).pid, daemonConfig(simState, daemon));
}

/** The state file name of a real control plane (the local lab's k8s machine). */
export const CONTROL_PLANE = 'control-plane';

/** The daemons a machine's `running` state depends on. */
export function servicesOf(name: string, machine: SimMachine, simState?: string): string[] {
  if (machine.role === 'app') return [SSHD, name];
  // The local lab's k8s machine runs the real control plane (recorded once it was started).
  if (
    machine.role === 'kubernetes' &&
    simState &&
    readState<{ dir?: string }>(simState, CONTROL_PLANE, {}).dir
  )
    return [SSHD, CONTROL_PLANE];
  return [SSHD];
}

/** True when another live process holds the machine's action lock. */
export function lockedByOther(record: MachineRecord | undefined): boolean {
  const busy = record?.busy;
  return !!busy && busy.pid !== process.pid && isAlive(busy.pid);
}

/** The state `vagrant status` reports: the stored one, or `aborted` when a running machine's services died. */
export function machineState(
  simState: string,
  name: string,
  machine: SimMachine,
  record: MachineRecord | undefined,
): MachineState {
  const stored = record?.state ?? 'not_created';
  if (stored !== 'running') return stored;
  return servicesOf(name, machine, simState).every((daemon) => daemonUp(simState, daemon))
    ? 'running'
    : 'aborted';
}
