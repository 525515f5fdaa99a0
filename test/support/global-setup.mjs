/**
 * One real Temporal dev server (in-memory SQLite, random ports, Web UI on) for the whole test run.
 * Tests reach it through TEMPORAL_TEST_ADDRESS. Jest loads this file natively, so it uses the built code
 * (`npm test` builds first).
 */
import path from 'node:path';
import { projectRoot } from '../../dist/src/config.js';
import { ensureTemporalCli } from '../../dist/src/temporal/cli-binary.js';
import { freshBundle } from '../../dist/src/worker/create-worker.js';
import { startDevServer } from '../../dist/src/temporal/dev-server.js';
import { processesBefore } from './leftovers.mjs';

export default async function globalSetup() {
  globalThis.tunnelLabProcessesBefore = processesBefore();
  const root = projectRoot();
  // Once, up front: a stale workflow bundle fails the run here, not every suite that starts a worker.
  freshBundle(root);
  const cli = await ensureTemporalCli(root, (line) => console.log(line));
  const server = await startDevServer({
    cli,
    logFile: path.join(root, 'test-artifacts', 'temporal-dev-server.log'),
  });
  globalThis.tunnelLabTestServer = server;
  process.env.TEMPORAL_TEST_ADDRESS = server.address;
  process.env.TEMPORAL_TEST_UI = server.uiUrl ?? '';
  process.env.TEMPORAL_CLI = cli;
}
