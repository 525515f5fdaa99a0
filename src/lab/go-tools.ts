/**
 * Programs the project builds from Go modules it pins under `tools/<module>/` (go.mod, go.sum and, for
 * its own programs, Go sources). A tool set names the programs built from one such module and the data
 * files copied out of its dependencies (CRDs, templates); it is built on first use into
 * `.tools/<set>/<hash>/`, where the hash covers the module's go.mod, go.sum and sources, so a change of
 * either rebuilds it once and older builds are removed. Go's build cache makes rebuilds quick.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cp, mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { TunnelLabError } from '../errors.js';
import { fillFolder, isComplete } from '../tool-folder.js';

export interface GoToolSet {
  /** Folder under `.tools/`. */
  name: string;
  /** Folder under `tools/` holding the Go module the programs are built from. */
  module: string;
  /** What the set is, for messages. */
  title: string;
  /** Output name → Go package (`.` for the module's own main package). */
  programs: Record<string, string>;
  /** `-ldflags` for every program. */
  ldflags?: string[];
  /**
   * Data copied from a dependency's module folder: output name (may hold `/`) → [module path, file or
   * folder in it].
   */
  files?: Record<string, [string, string]>;
  /** False when the programs come from dependencies only: the module's own sources do not count. */
  ownSources?: boolean;
  /** An environment variable naming a prebuilt folder instead. */
  override?: string;
  /** What a user of the lab gains from it, for the message when Go is missing. */
  purpose: string;
  /** How long the first build takes, for the message before it. */
  firstBuild: string;
  /** The error class for build failures. */
  error: new (message: string) => TunnelLabError;
}

/** A hash of what the set is built from: the module's go.mod, go.sum and (unless not its own) Go sources. */
export async function goSourceHash(projectRoot: string, set: GoToolSet): Promise<string> {
  const dir = path.join(projectRoot, 'tools', set.module);
  const files = (await readdir(dir))
    .filter((f) => (f.endsWith('.go') && set.ownSources !== false) || f === 'go.mod' || f === 'go.sum')
    .sort();
  const hash = createHash('sha256');
  for (const f of files)
    hash
      .update(f)
      .update('\0')
      .update(await readFile(path.join(dir, f)))
      .update('\0');
  // The set's own recipe counts too: other programs or flags make other binaries.
  hash.update(JSON.stringify([set.programs, set.ldflags ?? [], set.files ?? {}]));
  return hash.digest('hex').slice(0, 16);
}

function goProgramName(pkg: string): string {
  const parts = pkg.split('/');
  const last = parts.at(-1)!;
  return /^v\d+$/.test(last) && parts.length > 1 ? parts.at(-2)! : last;
}

/** The folder the set's programs live in once built (whether built or not). */
export async function goToolDir(projectRoot: string, set: GoToolSet): Promise<string> {
  const override = set.override && process.env[set.override];
  if (override) return override;
  return path.join(projectRoot, '.tools', set.name, await goSourceHash(projectRoot, set));
}

/** The folder if the set is built already; never builds. */
export async function findGoTools(projectRoot: string, set: GoToolSet): Promise<string | undefined> {
  const dir = await goToolDir(projectRoot, set);
  if (set.override && process.env[set.override]) return existsSync(dir) ? dir : undefined;
  return isComplete(dir) ? dir : undefined;
}

/** The set's folder, built with `go build` when the current sources have none yet. */
export async function ensureGoTools(
  projectRoot: string,
  set: GoToolSet,
  log: (line: string) => void = () => {},
): Promise<string> {
  const found = await findGoTools(projectRoot, set);
  if (found) return found;
  const dir = await goToolDir(projectRoot, set);
  if (set.override && process.env[set.override]) {
    throw new set.error(`${set.override}=${dir} does not exist`);
  }
  const go = await execa('go', ['version'], { reject: false });
  if (go.exitCode !== 0) {
    throw new set.error(
      `${set.title} needs Go 1.26 or later to build it once (tools/${set.module}); install Go, or ${set.purpose}`,
    );
  }
  log(
    `building ${set.title} (tools/${set.module}) with ${go.stdout.trim()}; ${set.firstBuild} the first time...`,
  );
  const started = Date.now();
  const source = path.join(projectRoot, 'tools', set.module);
  await fillFolder(dir, async (partial) => {
    const build = await execa(
      'go',
      [
        'build',
        '-mod=readonly',
        '-trimpath',
        ...(set.ldflags ? ['-ldflags', set.ldflags.join(' ')] : []),
        '-o',
        partial + path.sep,
        ...new Set(Object.values(set.programs)),
      ],
      { cwd: source, reject: false, all: true },
    );
    if (build.exitCode !== 0) {
      throw new set.error(`go build in tools/${set.module} failed:\n${(build.all ?? '').slice(-3000)}`);
    }
    // `go build -o DIR/` names each program after its package's last element (a major version suffix
    // such as /v3 skipped); give them their names.
    for (const [name, pkg] of Object.entries(set.programs)) {
      const built = path.join(partial, pkg === '.' ? path.basename(source) : goProgramName(pkg));
      if (!existsSync(built)) throw new set.error(`go build in tools/${set.module} made no ${pkg}`);
      if (built !== path.join(partial, name)) await rename(built, path.join(partial, name));
    }
    for (const [name, [modulePath, file]] of Object.entries(set.files ?? {})) {
      const list = await execa('go', ['list', '-mod=readonly', '-m', '-f', '{{.Dir}}', modulePath], {
        cwd: source,
        reject: false,
      });
      if (list.exitCode !== 0 || !list.stdout.trim()) {
        throw new set.error(`go list -m ${modulePath} in tools/${set.module} failed: ${list.stderr}`);
      }
      const target = path.join(partial, name);
      await mkdir(path.dirname(target), { recursive: true });
      await cp(path.join(list.stdout.trim(), file), target, { recursive: true });
      // The module cache is read-only; the copy must be removable when a newer build replaces it.
      await execa('chmod', ['-R', 'u+w', target]);
    }
  });
  // Builds of older sources are hundreds of MB each; keep only this one.
  const root = path.dirname(dir);
  for (const entry of await readdir(root)) {
    if (path.join(root, entry) !== dir) await rm(path.join(root, entry), { recursive: true, force: true });
  }
  log(`built ${set.title} in ${((Date.now() - started) / 1000).toFixed(0)} s: ${dir}`);
  return dir;
}
