/**
 * Bundles each program of the simulated lab (sim/lib/bundles.ts) into one file at build time, packages
 * included: a stand-in runs as its own process for every call, as the real tool does, and an ES module
 * graph of ~260 files took ~0.2 s of each call to load (Node 20 caches no compiled code).
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
    outExtension: { '.js': '.mjs' },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    // Packages published as CommonJS (yaml, cross-spawn...) call require() for Node built-ins, which an ES
    // module lacks. The bundles keep import.meta.url of their own file (projectRoot() searches up from it).
    banner: {
      js: "import { createRequire as __simCreateRequire } from 'node:module'; const require = __simCreateRequire(import.meta.url);",
    },
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
