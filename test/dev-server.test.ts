/**
 * The embedded dev server's SQLite file: written through a write-ahead log, and a run started before the
 * server stops is still there after it starts again on the same file.
 */
import { existsSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { startDevServer, type DevServer } from '../src/temporal/dev-server.js';

const cli = process.env.TEMPORAL_CLI!;

async function withClient<T>(server: DevServer, body: (client: Client) => Promise<T>): Promise<T> {
  const connection = await Connection.connect({ address: server.address });
  try {
    return await body(new Client({ connection }));
  } finally {
    await connection.close();
  }
}

describe('embedded dev server on a SQLite file', () => {
  it('keeps its data in a write-ahead-logged file that outlives a restart', async () => {
    const dbFile = path.join(await mkdtemp(path.join(os.tmpdir(), 'tunnel-lab-db-')), 'temporal', 'dev.db');
    const workflowId = `survives-restart-${Date.now()}`;

    const first = await startDevServer({ cli, dbFile, uiPort: false });
    try {
      // No worker serves this queue: the run stays open, which is what a stopped server must keep.
      await withClient(first, (client) =>
        client.workflow.start('tunnelScenario', {
          taskQueue: `nobody-${workflowId}`,
          workflowId,
          args: [{ playbook: 'hello' }],
        }),
      );
      expect(existsSync(`${dbFile}-wal`)).toBe(true);
    } finally {
      await first.stop();
    }

    const second = await startDevServer({ cli, dbFile, uiPort: false });
    try {
      await withClient(second, async (client) => {
        const handle = client.workflow.getHandle(workflowId);
        expect((await handle.describe()).status.name).toBe('RUNNING');
        await handle.terminate('test done');
      });
    } finally {
      await second.stop();
    }
  }, 60_000);
});
