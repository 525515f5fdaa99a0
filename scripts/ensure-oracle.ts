/** Builds the Istio oracle (tools/istio-oracle) when the current sources have no binary yet. */
import { projectRoot } from '../src/config.js';
import { ensureOracle } from '../src/mesh/oracle.js';

ensureOracle(projectRoot(), (line) => console.log(line)).then(
  (binary) => console.log(`Istio oracle: ${binary}`),
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
  },
);
