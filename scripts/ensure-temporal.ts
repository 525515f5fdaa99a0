/** Makes sure the Temporal CLI (dev server + Web UI) is available, building it when missing. */
import { projectRoot } from '../src/config.js';
import { ensureTemporalCli } from '../src/temporal/cli-binary.js';

ensureTemporalCli(projectRoot(), (line) => console.log(line)).then(
  (cli) => console.log(`temporal CLI: ${cli}`),
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
  },
);
