import { checkLeftovers } from './leftovers.mjs';

export default async function globalTeardown() {
  await globalThis.tunnelLabTestServer?.stop();
  // Nothing a test started may outlive the run (see leftovers.mjs).
  if (globalThis.tunnelLabProcessesBefore) await checkLeftovers(globalThis.tunnelLabProcessesBefore);
}
