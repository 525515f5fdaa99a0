/**
 * docker-compose.yml read as the one description of the production stack: `tunnel-lab stack` takes its
 * versions (image tags), each service's environment and the one-shot scripts (schema, namespace) from
 * it, and changes only what differs without Docker (host names, ports, paths). The two cannot drift.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'yaml';
import { StackError } from '../errors.js';

interface ComposeService {
  image?: string;
  environment?: Record<string, string | number | null>;
  command?: string[] | string;
}

/** One service as the native stack needs it. */
export interface StackService {
  /** The image tag (`1.29.1` of `temporalio/server:1.29.1`); empty for a service built from the project. */
  version: string;
  /** Its environment, `${VAR:-default}` resolved as compose resolves it (from `env`, else the default). */
  environment: Record<string, string>;
  /** A one-shot service's script (`sh -c`), `$$` unescaped. */
  script?: string;
}

export interface ComposeStack {
  file: string;
  postgresql: StackService;
  schema: StackService;
  temporal: StackService;
  namespace: StackService;
  ui: StackService;
  worker: StackService;
}

const SERVICES = {
  postgresql: 'postgresql',
  schema: 'temporal-schema',
  temporal: 'temporal',
  namespace: 'temporal-namespace',
  ui: 'temporal-ui',
  worker: 'worker',
} as const;

/** Reads the project's docker-compose.yml; `env` stands for the shell compose would read variables from. */
export async function readComposeStack(
  projectRoot: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<ComposeStack> {
  const file = path.join(projectRoot, 'docker-compose.yml');
  const doc = parse(await readFile(file, 'utf8'), { merge: true }) as {
    services?: Record<string, ComposeService>;
  };
  const service = (name: string): StackService => {
    const found = doc.services?.[name];
    if (!found) throw new StackError(`${file}: no service "${name}"`);
    const environment = Object.fromEntries(
      Object.entries(found.environment ?? {}).map(([k, v]) => [k, interpolate(String(v ?? ''), env)]),
    );
    const command = Array.isArray(found.command) ? found.command.join(' ') : found.command;
    return {
      version: found.image?.split(':')[1]?.split('-')[0] ?? '',
      environment,
      ...(command ? { script: interpolate(command, env) } : {}),
    };
  };
  return {
    file,
    ...(Object.fromEntries(Object.entries(SERVICES).map(([key, name]) => [key, service(name)])) as Omit<
      ComposeStack,
      'file'
    >),
  };
}

/** Compose's interpolation: `${VAR:-default}`, `${VAR}` and `$VAR` from `env`; `$$` is a literal `$`. */
export function interpolate(text: string, env: NodeJS.ProcessEnv): string {
  return text.replace(
    /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
    (whole, braced?: string, fallback?: string, bare?: string) => {
      if (whole === '$$') return '$';
      const name = (braced ?? bare)!;
      const value = env[name];
      return value !== undefined && value !== '' ? value : (fallback ?? '');
    },
  );
}
