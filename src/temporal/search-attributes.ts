import type { ConnectionLike } from '@temporalio/client';
import proto from '@temporalio/proto';
import { SEARCH_ATTRIBUTES } from '../../workflows/search-attributes.js';

const GRPC_ALREADY_EXISTS = 6;
const GRPC_NOT_FOUND = 5;
/**
 * How long to wait for the server to know the namespace: one created a moment ago (as the production
 * stack's namespace script does right before the worker starts) reaches the namespace cache of the
 * server's services within its refresh interval, 10 s by default; until then they answer NOT_FOUND.
 */
const NAMESPACE_WAIT_MS = 30_000;
const NAMESPACE_POLL_MS = 500;

/**
 * Registers the runs' search attributes on the server when missing, so that a plain
 * `temporal server start-dev` (or any cluster where we may) works without manual setup.
 */
export async function ensureSearchAttributes(
  connection: ConnectionLike,
  namespace: string,
  waitMs = NAMESPACE_WAIT_MS,
): Promise<void> {
  const existing = await whenNamespaceKnown(
    () => connection.operatorService.listSearchAttributes({ namespace }),
    waitMs,
  );
  const known = { ...existing.customAttributes, ...existing.systemAttributes };
  const missing = SEARCH_ATTRIBUTES.filter((key) => !(key.name in known));
  if (missing.length === 0) return;
  try {
    await connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(
        missing.map((key) => [
          key.name,
          proto.temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
        ]),
      ),
    });
  } catch (err) {
    // Another worker may have registered them at the same moment.
    if ((err as { code?: number }).code !== GRPC_ALREADY_EXISTS) throw err;
  }
}

/** Runs `call` again while the server says the namespace is not found, for up to `waitMs`. */
async function whenNamespaceKnown<T>(call: () => Promise<T>, waitMs: number): Promise<T> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      return await call();
    } catch (err) {
      const { code, message } = err as { code?: number; message?: string };
      const unknownNamespace = code === GRPC_NOT_FOUND && /namespace/i.test(message ?? '');
      if (!unknownNamespace || Date.now() + NAMESPACE_POLL_MS > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, NAMESPACE_POLL_MS));
    }
  }
}
