/**
 * Which lab a run drives, as one id that every run driving the same machines shares (see LabIdentity in
 * workflows/types.ts): the host and the lab's Vagrant folder, where Vagrant keeps the machines; for a lab
 * of kind existing, the host and the kubeconfig and context it names.
 */
import { createHash } from 'node:crypto';
import { realpathSync } from 'node:fs';
import path from 'node:path';
import type { LabIdentity } from '../../workflows/types.js';
import { labPlace, type LabDefinition } from './definition.js';

/**
 * The identity of `def` for a run whose own lab folder is `runLab`, on `host`. A lab whose Vagrant folder
 * is inside the run's own lab folder (a simulated lab with `lifetime: run`) belongs to that run alone and
 * gets no lease id.
 */
export function labIdentity(def: LabDefinition, runLab: string, host: string): LabIdentity {
  if (!def.vagrant) {
    // An existing cluster is shared by nature: every run on it takes the lease.
    const where = `${host}:${labPlace(def)}`;
    const hash = createHash('sha256').update(where).digest('hex').slice(0, 16);
    return { name: def.name, where, leaseId: `lab-lease-${host}-${hash}` };
  }
  const dir = resolved(def.vagrant.dir);
  const where = `${host}:${dir}`;
  const relative = path.relative(resolved(runLab), dir);
  const own = relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
  if (own) return { name: def.name, where };
  const hash = createHash('sha256').update(where).digest('hex').slice(0, 16);
  return { name: def.name, where, leaseId: `lab-lease-${host}-${hash}` };
}

/** The folder with symbolic links resolved, so that two paths to one folder give one id. */
function resolved(dir: string): string {
  try {
    return realpathSync(dir);
  } catch {
    return path.resolve(dir);
  }
}
