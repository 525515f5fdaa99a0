/**
 * Small value helpers of the mesh model: reading loosely typed Kubernetes and Envoy config (`obj`,
 * `list`, `text`, `field`), converting between Envoy's proto and JSON field names, and telling addresses
 * apart.
 */

/** A config object as it comes from YAML or JSON. */
export type Obj = Record<string, unknown>;

/** Envoy config in EnvoyFilters may use proto field names or their JSON (camelCase) form. */
export function field(value: unknown, snakeName: string): unknown {
  const o = obj(value);
  if (snakeName in o) return o[snakeName];
  const camel = snakeName.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
  return o[camel];
}

export function snake(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** Every key of a config value, at every depth, in its JSON (camelCase) form. */
export function camelKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(camelKeys);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [
        k.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase()),
        camelKeys(v),
      ]),
    );
  }
  return value;
}

/** `patch` merged into `base` at every depth; a key the base lacks is written in proto (snake_case) form. */
export function deepMerge(base: Obj, patch: Obj): Obj {
  const out: Obj = { ...base };
  for (const [k, v] of Object.entries(patch)) {
    const key = k in base ? k : snake(k);
    out[key] = v && typeof v === 'object' && !Array.isArray(v) ? deepMerge(obj(base[key]), v as Obj) : v;
  }
  return out;
}

/** A config value as text: strings and numbers as they are, anything else empty. */
export function text(value: unknown): string {
  return typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean'
    ? String(value)
    : '';
}

export function obj(value: unknown): Obj {
  return value && typeof value === 'object' && !Array.isArray(value) ? (value as Obj) : {};
}

export function list(value: unknown): Obj[] {
  return Array.isArray(value) ? (value as Obj[]) : [];
}

export function splitHostPort(target: string): [string, string | undefined] {
  const at = target.lastIndexOf(':');
  return at === -1 ? [target, undefined] : [target.slice(0, at), target.slice(at + 1)];
}

export function isIp(value: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(value) || value.includes(':');
}

export function isPrivate(ip: string): boolean {
  return /^(10\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.|127\.)/.test(ip);
}
