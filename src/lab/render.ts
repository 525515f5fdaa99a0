/**
 * Manifest templates (`manifests/**.yaml`): Kubernetes YAML whose string values may hold expressions,
 * rendered with the lab's addresses and a step's values before `kubectl apply`.
 *
 * - `${{ lab.PATH }}`: from the lab definition: `lab.proxy.ip`, `lab.proxy.port`, `lab.app.ip`,
 *   `lab.app.port`, `lab.app.httpPort`, `lab.kubernetes.ip` (machines by role), `lab.machines.<name>.ip`, `lab.network.*`.
 * - `${{ values.PATH }}`: `manifests/values.yaml`, overridden by the step's `values`.
 * - `${{ secrets.NAME }}`: a secret of the run (`proxyAuthorization`, once a proxy.credential step made
 *   one), read from the run's folder by the step that renders; it stays in that step's rendered files.
 * - `${{ NAME }}`: the variable of an enclosing `$forEach`.
 * - A value that is exactly one expression keeps the value's type (a number stays a number, a list a
 *   list); inside a longer string the value is written as text.
 * - Mapping keys may hold expressions too (written as text).
 * - `{ $forEach: NAME in PATH, $item: {...} }` as a whole document, or as an item of a list, repeats
 *   `$item` once per element of the list at PATH; `NAME, INDEX in PATH` also names the position (0, 1, ...).
 * - `{ $if: CONDITION, $then: ..., $else: ... }` as a document, a list item or a mapping's value stands
 *   for `$then` when CONDITION holds, else for `$else`; without that branch the document, item or key is
 *   left out. CONDITION is `PATH` (true unless false, 0, empty or null), `PATH == WORD` or `PATH != WORD`
 *   (compared as text).
 *
 * Rendering works on parsed YAML, so values never need quoting or indenting; only inside flow
 * collections (`[...]`, `{...}`) must an expression be quoted, as its braces are YAML syntax there. An
 * expression that names nothing is an error naming the file and the field.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { ManifestError } from '../errors.js';
import { ownEgressGateway, type LabDefinition, type LabMachine } from './definition.js';

export interface RenderContext {
  lab: Record<string, unknown>;
  values: Record<string, unknown>;
  /** The run's secrets (`secrets.*`); none when unset. */
  secrets?: Record<string, string>;
}

export interface RenderedManifest {
  /** The rendered documents, as YAML text. */
  yaml: string;
  /** The rendered documents, as data. */
  documents: Record<string, unknown>[];
}

const EXPRESSION = /\$\{\{\s*([A-Za-z_][\w-]*(?:\.[\w-]+)*)\s*\}\}/g;
const WHOLE = /^\$\{\{\s*([A-Za-z_][\w-]*(?:\.[\w-]+)*)\s*\}\}$/;
const CONDITION = /^([A-Za-z_][\w-]*(?:\.[\w-]+)*)(?:\s*(==|!=)\s*(\S+))?$/;
const FOR_EACH = /^([A-Za-z_]\w*)(?:\s*,\s*([A-Za-z_]\w*))?\s+in\s+([A-Za-z_][\w-]*(?:\.[\w-]+)*)$/;

/** The folder of the project's manifest templates. */
export function manifestsDir(projectRoot: string): string {
  return path.join(projectRoot, 'manifests');
}

/** The absolute path of a template named relative to `manifests/`; refuses paths that leave it. */
export function manifestPath(dir: string, relative: string): string {
  const resolved = path.resolve(dir, relative);
  if (path.isAbsolute(relative) || !resolved.startsWith(dir + path.sep)) {
    throw new ManifestError(`manifest "${relative}" is not a path inside ${dir}`);
  }
  return resolved;
}

/**
 * The `lab` namespace of templates: the lab's machines by role and name, and its network. A role the lab
 * has no machine for (an existing cluster has no `kubernetes` machine) is absent, and a template that
 * reads it fails to render, naming it.
 */
export function labValues(def: LabDefinition): Record<string, unknown> {
  const role = (name: LabMachine['role']) => Object.entries(def.machines).find(([, m]) => m.role === name);
  const proxy = role('proxy');
  const app = role('app');
  const k8s = role('kubernetes');
  return {
    name: def.name,
    network: def.network,
    machines: Object.fromEntries(
      Object.entries(def.machines).map(([name, m]) => [name, { ip: m.ip, role: m.role }]),
    ),
    ...(proxy
      ? {
          proxy: {
            machine: proxy[0],
            ip: proxy[1].ip,
            port: def.network.proxyPort,
            plainPort: def.network.proxyPlainPort,
            authPort: def.network.proxyAuthPort,
          },
        }
      : {}),
    ...(app
      ? {
          app: {
            machine: app[0],
            ip: app[1].ip,
            port: def.network.appPort,
            httpPort: def.network.appHttpPort,
          },
        }
      : {}),
    ...(k8s ? { kubernetes: { machine: k8s[0], ip: k8s[1].ip } } : {}),
  };
}

/** `manifests/values.yaml`: the defaults of `${{ values.* }}`. */
export async function defaultValues(dir: string): Promise<Record<string, unknown>> {
  const file = path.join(dir, 'values.yaml');
  try {
    return (parse(await readFile(file, 'utf8')) ?? {}) as Record<string, unknown>;
  } catch (err) {
    throw new ManifestError(`cannot read the manifest defaults ${file}: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

/**
 * The defaults of `${{ values.* }}` on a lab: manifests/values.yaml, with the lab's namespace as
 * values.namespace and, with `egressGateway: own`, the run's own gateway as values.egressGateway (a step's
 * own values override them).
 */
export async function labDefaultValues(dir: string, def: LabDefinition): Promise<Record<string, unknown>> {
  const values = mergeValues(await defaultValues(dir), { namespace: def.namespace });
  const own = ownEgressGateway(def);
  // Replaced, not merged: the shared gateway's selector labels must not reach the run's own gateway.
  if (own) values.egressGateway = { ...(values.egressGateway as Record<string, unknown>), ...own };
  return values;
}

/** Objects merge key by key; anything else (lists included) replaces the default. */
export function mergeValues(
  base: Record<string, unknown>,
  override: Record<string, unknown>,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(override)) {
    const current = out[key];
    out[key] = isPlainObject(current) && isPlainObject(value) ? mergeValues(current, value) : value;
  }
  return out;
}

/** Reads and renders one template; `name` is how errors refer to it. */
export async function renderManifestFile(
  file: string,
  context: RenderContext,
  name = file,
): Promise<RenderedManifest> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ManifestError(
      `manifest ${name} cannot be read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
      {
        cause: err,
      },
    );
  }
  return renderManifest(text, context, name);
}

/** Renders template text: expressions replaced, `$forEach` expanded, one YAML document per object. */
export function renderManifest(text: string, context: RenderContext, name: string): RenderedManifest {
  const documents: Record<string, unknown>[] = [];
  for (const [index, doc] of parseAllDocuments(text).entries()) {
    if (doc.errors.length > 0) throw new ManifestError(`${name}: ${doc.errors[0]!.message.split('\n')[0]}`);
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) continue;
    const rendered = expand(value, { ...context, secrets: context.secrets ?? {} }, name, [
      `document ${index + 1}`,
    ]);
    for (const item of rendered) {
      if (!isPlainObject(item)) throw new ManifestError(`${name}: document ${index + 1} is not a mapping`);
      documents.push(item);
    }
  }
  const yaml = documents.map((d) => stringify(d, { lineWidth: 0 })).join('---\n');
  return { yaml, documents };
}

/** Renders a value that may be a `$forEach` or `$if` block: the list of what it stands for. */
function expand(value: unknown, scope: Record<string, unknown>, file: string, at: string[]): unknown[] {
  if (isPlainObject(value) && '$if' in value) {
    const match = typeof value.$if === 'string' ? CONDITION.exec(value.$if.trim()) : null;
    const extra = Object.keys(value).filter((k) => !['$if', '$then', '$else'].includes(k));
    if (!match || extra.length > 0) {
      throw new ManifestError(
        `${file}: ${where(at)}: write $if as { $if: PATH, $then: ..., $else: ... } (PATH == WORD and PATH != WORD compare)`,
      );
    }
    const [, condPath, op, word] = match as unknown as [
      string,
      string,
      string | undefined,
      string | undefined,
    ];
    const found = lookup(condPath, scope, file, at);
    const holds = op
      ? (String(found) === word) === (op === '==')
      : !(found === false || found === 0 || found === '' || found === null) &&
        !(Array.isArray(found) && found.length === 0);
    const branch = holds ? value.$then : value.$else;
    return branch === undefined ? [] : expand(branch, scope, file, [...at, holds ? '$then' : '$else']);
  }
  if (isPlainObject(value) && '$forEach' in value) {
    const spec = value.$forEach;
    const match = typeof spec === 'string' ? FOR_EACH.exec(spec.trim()) : null;
    if (!match || !('$item' in value) || Object.keys(value).length !== 2) {
      throw new ManifestError(
        `${file}: ${where(at)}: write $forEach as { $forEach: NAME in PATH, $item: ... }`,
      );
    }
    const [, variable, indexName, listPath] = match as unknown as [
      string,
      string,
      string | undefined,
      string,
    ];
    const items = lookup(listPath, scope, file, at);
    if (!Array.isArray(items)) throw new ManifestError(`${file}: ${where(at)}: ${listPath} is not a list`);
    return (items as unknown[]).map((item, i) =>
      render(value.$item, { ...scope, [variable]: item, ...(indexName ? { [indexName]: i } : {}) }, file, [
        ...at,
        `${variable}[${i}]`,
      ]),
    );
  }
  return [render(value, scope, file, at)];
}

function render(value: unknown, scope: Record<string, unknown>, file: string, at: string[]): unknown {
  if (typeof value === 'string') {
    const whole = WHOLE.exec(value);
    if (whole) return lookup(whole[1]!, scope, file, at);
    return value.replace(EXPRESSION, (_, expr: string) => {
      const found = lookup(expr, scope, file, at);
      return typeof found === 'string' ? found : JSON.stringify(found);
    });
  }
  if (Array.isArray(value)) return value.flatMap((item, i) => expand(item, scope, file, [...at, `[${i}]`]));
  if (isPlainObject(value)) {
    const entries: [string, unknown][] = [];
    for (const [key, item] of Object.entries(value)) {
      const name = String(render(key, scope, file, [...at, key]));
      if (isPlainObject(item) && '$if' in item) {
        // A conditional value: the key stays only with a branch to stand for it.
        const chosen = expand(item, scope, file, [...at, key]);
        if (chosen.length > 0) entries.push([name, chosen[0]]);
      } else {
        entries.push([name, render(item, scope, file, [...at, key])]);
      }
    }
    return Object.fromEntries(entries);
  }
  return value;
}

function lookup(expr: string, scope: Record<string, unknown>, file: string, at: string[]): unknown {
  const parts = expr.split('.');
  let current: unknown = scope;
  for (const [i, key] of parts.entries()) {
    const holder = current as Record<string, unknown> | unknown[] | undefined;
    const found =
      holder && typeof holder === 'object' && key in holder
        ? (holder as Record<string, unknown>)[key]
        : undefined;
    if (found === undefined) {
      const known = holder && typeof holder === 'object' ? Object.keys(holder).sort().join(', ') : '';
      const name = parts.slice(0, i).join('.');
      if (parts[0] === 'secrets' && i === 1) {
        throw new ManifestError(
          `${file}: ${where(at)}: \${{ ${expr} }}: this run has no secret ${key}` +
            (key === 'proxyAuthorization' ? ' (a proxy.credential step before this one makes it)' : ''),
        );
      }
      throw new ManifestError(
        `${file}: ${where(at)}: \${{ ${expr} }} names nothing` +
          (i === 0
            ? `; known: ${known}`
            : ` (${name}.${key} is not defined${known ? `; ${name} has ${known}` : ''})`),
      );
    }
    current = found;
  }
  return current;
}

function where(at: string[]): string {
  return at.join('.').replace(/\.\[/g, '[');
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return !!value && typeof value === 'object' && !Array.isArray(value);
}
