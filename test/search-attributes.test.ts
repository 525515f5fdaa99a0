/**
 * Registering the runs' search attributes right after the namespace was created: the server's services
 * answer NOT_FOUND until their namespace cache knows it, so the registration waits for it, but not for
 * ever, and not on other errors.
 */
import type { ConnectionLike } from '@temporalio/client';
import { ensureSearchAttributes } from '../src/temporal/search-attributes.js';
import { SEARCH_ATTRIBUTES } from '../workflows/search-attributes.js';

/** A connection whose listSearchAttributes fails with `errors` first, then lists every attribute. */
function serverAnswering(errors: Error[]): { connection: ConnectionLike; calls: () => number } {
  let calls = 0;
  const operatorService = {
    listSearchAttributes: () => {
      const error = errors[calls++];
      if (error) return Promise.reject(error);
      return Promise.resolve({
        customAttributes: Object.fromEntries(SEARCH_ATTRIBUTES.map((key) => [key.name, 2])),
        systemAttributes: {},
      });
    },
  };
  return { connection: { operatorService } as unknown as ConnectionLike, calls: () => calls };
}

const notFound = () => Object.assign(new Error('Namespace default is not found.'), { code: 5 });

describe('ensureSearchAttributes', () => {
  it('waits while the server does not know the namespace yet', async () => {
    const server = serverAnswering([notFound(), notFound()]);
    await ensureSearchAttributes(server.connection, 'default', 5_000);
    expect(server.calls()).toBe(3);
  });

  it('gives up once the wait is over', async () => {
    const server = serverAnswering(Array.from({ length: 100 }, notFound));
    await expect(ensureSearchAttributes(server.connection, 'default', 1_200)).rejects.toThrow(
      /Namespace default is not found/,
    );
    expect(server.calls()).toBeGreaterThan(1);
    expect(server.calls()).toBeLessThan(5);
  });

  it('does not wait on other errors', async () => {
    const denied = Object.assign(new Error('Request unauthorized.'), { code: 7 });
    const server = serverAnswering([denied]);
    await expect(ensureSearchAttributes(server.connection, 'default', 5_000)).rejects.toThrow(/unauthorized/);
    expect(server.calls()).toBe(1);
  });
});
