/** Bundles the workflow code once at build time, so workers start without running webpack. */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { projectRoot, workflowBundlePath } from '../src/config.js';

async function main(): Promise<void> {
  const root = projectRoot();
  const { code } = await bundleWorkflowCode({
    workflowsPath: path.join(root, 'dist', 'workflows', 'index.js'),
    logger: { info() {}, warn: console.warn, error: console.error, debug() {}, trace() {}, log() {} },
  });
  await writeFile(workflowBundlePath(root), code);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
