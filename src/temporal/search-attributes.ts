import type { ConnectionLike } from '@temporalio/client';
import proto from '@temporalio/proto';
import { SEARCH_ATTRIBUTES } from '../../workflows/search-attributes.js';

const GRPC_ALREADY_EXISTS = 6;

/**
 * Registers the runs' search attributes on the server when missing, so that a plain
 * `temporal server start-dev` (or any cluster where we may) works without manual setup.
 */
export async function ensureSearchAttributes(connection: ConnectionLike, namespace: string): Promise<void> {
  const existing = await connection.operatorService.listSearchAttributes({ namespace });
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
