export default async function globalTeardown() {
  await globalThis.tunnelLabTestServer?.stop();
}
