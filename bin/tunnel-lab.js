#!/usr/bin/env node
// Entry point of the `tunnel-lab` command; the code runs from the build in dist/.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = fileURLToPath(new URL('../dist/src/cli/main.js', import.meta.url));
if (!existsSync(main)) {
  console.error(
    'tunnel-lab is not built yet: run `npm ci && npm run build` (or use ./tunnel-lab, which does it)',
  );
  process.exit(3);
}
await import(main);
