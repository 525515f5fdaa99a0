/**
 * Bundles each program of the simulated lab (sim/lib/bundles.ts) into one file at build time, packages
 * included: a stand-in runs as its own process for every call, as the real tool does, and an ES module
 * graph of ~260 files took ~0.2 s of each call to load (Node 20 caches no compiled code).
 * The bundles are CommonJS: Node compiles an ES module's whole source before running it, and a 600 kB
 * bundle loaded as one took 0.14 s per call against 0.09 s as CommonJS (`node -e 0`: 0.09 s).
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';
import { projectRoot } from '../src/config.js';
import { SIM_PROGRAMS, simProgramPath } from '../sim/lib/bundles.js';

async function main(): Promise<void> {
  const root = projectRoot();
  await build({
    // From tsc's output, so the bundles run exactly the code dist/sim/ holds.
    entryPoints: Object.fromEntries(
      SIM_PROGRAMS.map((name) => [name, path.join(root, 'dist', 'sim', `${name}.js`)]),
    ),
    outdir: path.dirname(simProgramPath(root, SIM_PROGRAMS[0])),
    outExtension: { '.js': '.cjs' },
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    // The sources are ES modules: import.meta.url becomes the bundle's own file URL, as it was when they
    // were bundled as one (projectRoot() searches up from it).
    banner: { js: "const __simImportMetaUrl = require('node:url').pathToFileURL(__filename).href;" },
    define: { 'import.meta.url': '__simImportMetaUrl' },
    // ssh2 loads native addons: never bundled (no stand-in imports it).
    external: ['ssh2', 'cpu-features'],
    logLevel: 'warning',
  });
  // Each launcher runs the bundle of its own name, which ./tunnel-lab checks for when it decides to build.
  for (const launcher of readdirSync(path.join(root, 'sim', 'bin'))) {
    const bundle = path.relative(root, simProgramPath(root, launcher as (typeof SIM_PROGRAMS)[number]));
    const text = readFileSync(path.join(root, 'sim', 'bin', launcher), 'utf8');
    if (!(SIM_PROGRAMS as readonly string[]).includes(launcher) || !text.includes(`/../../${bundle}"`)) {
      throw new Error(`sim/bin/${launcher} should run ${bundle}, a program of sim/lib/bundles.ts`);
    }
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
