/**
 * Provisioning markers. Every provision script ends by writing `/etc/tunnel-lab/provisioned`: `key=value`
 * lines naming the machine's role, the script's own SHA-256, and the versions and certificates it
 * installed. `vm.up` compares a machine's marker with what the lab file and the certificates on the host
 * say it should hold, and provisions the machine again when the marker is missing (never provisioned, or
 * stopped half-way) or stale (another release pinned, a changed script, new certificates).
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { LabDefinition } from './definition.js';

/** Where the provision scripts write the marker; a lab machine's `files.provisioned` says otherwise. */
export const MARKER_FILE = '/etc/tunnel-lab/provisioned';

export type Marker = Record<string, string>;

/** The release a machine's marker names, by role: the lab file's `vagrant.versions` key it is pinned by. */
export function pinnedTool(role: string | undefined): 'k0s' | 'envoy' | undefined {
  return role === 'kubernetes' ? 'k0s' : role === 'proxy' ? 'envoy' : undefined;
}

/** A marker's `key=value` lines (blank and malformed lines are ignored). */
export function parseMarker(text: string): Marker {
  const marker: Marker = {};
  for (const line of text.split('\n')) {
    const at = line.indexOf('=');
    if (at > 0) marker[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return marker;
}

async function sha256Of(file: string): Promise<string | undefined> {
  try {
    const content = await readFile(file);
    return content.length > 0 ? createHash('sha256').update(content).digest('hex') : undefined;
  } catch {
    return undefined;
  }
}

/** What a machine's marker must say, from the lab file (versions, script) and the host's certificates. */
export async function expectedMarker(def: LabDefinition, name: string): Promise<Marker> {
  const machine = def.machines[name]!;
  const expected: Marker = { role: machine.role };
  const script = (machine.provision as { script?: string } | undefined)?.script;
  if (script) {
    const hash = await sha256Of(path.resolve(path.dirname(def.file), script));
    if (hash) expected.script = hash;
  }
  const versions = (def.vagrant?.versions ?? {}) as Record<string, string | number>;
  const pinned = pinnedTool(machine.role);
  if (pinned && versions[pinned] !== undefined) expected[pinned] = `${versions[pinned]}`;
  if (machine.role === 'app') {
    // Until certs.generate has run the app may serve a temporary pair; once it has, it must serve these.
    const ca = await sha256Of(path.join(def.certsDir, 'ca.crt'));
    const cert = await sha256Of(path.join(def.certsDir, 'external-app.crt'));
    if (ca && cert) Object.assign(expected, { ca, cert, temporary: 'no' });
  }
  return expected;
}

/** Why a machine must be provisioned again, or undefined when its marker holds what is expected. */
export function markerProblem(expected: Marker, actual: Marker | undefined): string | undefined {
  if (!actual) return 'no provisioning marker (never provisioned, or provisioning stopped half-way)';
  const stale = Object.entries(expected).filter(([key, value]) => actual[key] !== value);
  if (stale.length === 0) return undefined;
  // Hashes are told apart by their first 12 digits, as git's short ids are.
  const show = (value: string | undefined) =>
    value === undefined ? 'unset' : /^[0-9a-f]{64}$/.test(value) ? value.slice(0, 12) : value;
  return stale
    .map(([key, value]) => `${key} is ${show(actual[key])} on the machine, the lab wants ${show(value)}`)
    .join('; ');
}
