/** Settings read from the environment, with the defaults the README documents. */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const DEFAULT_ADDRESS = '127.0.0.1:7233';
export const DEFAULT_UI_PORT = 8233;

export interface Settings {
  address: string;
  /** True when TEMPORAL_ADDRESS was not set, so the CLI may start the embedded dev server there. */
  addressIsDefault: boolean;
  namespace: string;
  taskQueue: string;
  projectRoot: string;
  stateRoot: string;
  /** The lab host this machine's worker serves (TUNNEL_LAB_HOST); unset on a single machine. */
  labHost?: string;
  /**
   * Folders besides the project's playbooks/ that a worker reads playbook files from
   * (TUNNEL_LAB_PLAYBOOK_DIRS, a path list as PATH). A workflow input naming a file elsewhere is refused unread.
   */
  playbookDirs: string[];
}

export function settings(env: NodeJS.ProcessEnv = process.env): Settings {
  const root = projectRoot();
  return {
    address: env.TEMPORAL_ADDRESS || DEFAULT_ADDRESS,
    addressIsDefault: !env.TEMPORAL_ADDRESS,
    namespace: env.TEMPORAL_NAMESPACE || 'default',
    taskQueue: env.TEMPORAL_TASK_QUEUE || 'tunnel-lab',
    projectRoot: root,
    stateRoot: path.resolve(env.TUNNEL_LAB_STATE || path.join(root, '.state')),
    labHost: env.TUNNEL_LAB_HOST || undefined,
    playbookDirs: (env.TUNNEL_LAB_PLAYBOOK_DIRS ?? '')
      .split(path.delimiter)
      .filter(Boolean)
      .map((dir) => path.resolve(dir)),
  };
}

let cachedRoot: string | undefined;

/** The checkout this code runs from (found from this file, so it works from src/ and from dist/src/). */
export function projectRoot(): string {
  if (cachedRoot) return cachedRoot;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = path.join(dir, 'package.json');
    if (
      existsSync(manifest) &&
      (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'tunnel-lab'
    ) {
      cachedRoot = dir;
      return dir;
    }
    const parent = path.dirname(dir);
    if (parent === dir)
      throw new Error('cannot find the tunnel-lab checkout above ' + fileURLToPath(import.meta.url));
    dir = parent;
  }
}

/** Link to a run in the Web UI. */
export function runUrl(uiBase: string, namespace: string, workflowId: string): string {
  return `${uiBase}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(workflowId)}`;
}

/** The workflow bundle built by `npm run build`, next to the compiled code. */
export function workflowBundlePath(root: string): string {
  return path.join(root, 'dist', 'workflow-bundle.js');
}
