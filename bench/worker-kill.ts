/**
 * Prints how a run recovers from a worker SIGKILLed during each step of a playbook in turn (tls-passthrough
 * on the simulated lab by default): whether the run passed, how long after the new worker was spawned the
 * killed step started again, and which other steps needed more than one attempt (a probe may fail once
 * while the mesh settles; no step's activity is scheduled twice). The worker is killed the moment the step
 * appears in the workers' task ledger, so even short steps are caught running.
 * Usage: node dist/bench/worker-kill.js [--playbook NAME] [--lab NAME] [--only STEP | --from STEP]
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { actions } from '../activities/registry.js';
import { projectRoot } from '../src/config.js';
import { loadPlaybookFile, resolvePlaybookPath } from '../src/playbook/load.js';
import { ensureTemporalCli } from '../src/temporal/cli-binary.js';
import { startDevServer } from '../src/temporal/dev-server.js';
import { planSteps } from '../workflows/types.js';
import { killDuring } from './kill-during.js';

const TARGET_MS = 2_000;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      playbook: { type: 'string', default: 'tls-passthrough' },
      lab: { type: 'string', default: 'sim' },
      only: { type: 'string' },
      from: { type: 'string' },
    },
  });
  const root = projectRoot();
  const playbooksDir = path.join(root, 'playbooks');
  const plan = await loadPlaybookFile(resolvePlaybookPath(values.playbook, playbooksDir), {
    playbooksDir,
    actions,
  });
  const all = planSteps(plan).map(({ step }) => step.id);
  const steps = values.only
    ? all.filter((id) => id === values.only)
    : all.slice(values.from ? Math.max(0, all.indexOf(values.from)) : 0);
  const server = await startDevServer({ cli: await ensureTemporalCli(root), uiPort: false });
  const connection = await Connection.connect({ address: server.address });
  const client = new Client({ connection });
  const rows: string[][] = [['step', 'killed', 'run', 'restart after spawn', 'other steps retried']];
  const latencies: number[] = [];
  try {
    for (const step of steps) {
      const result = await killDuring(client, {
        root,
        address: server.address,
        playbook: values.playbook,
        lab: values.lab,
        step,
      });
      if (result.restartMs !== undefined) latencies.push(result.restartMs);
      rows.push([
        step,
        result.caught ? 'yes' : 'no (ended first)',
        result.status,
        result.restartMs !== undefined ? `${result.restartMs} ms` : result.caught ? 'never' : '-',
        [...result.retried, ...result.rescheduled.map((id) => `${id} (run again)`)].join(', ') || 'none',
      ]);
      console.error(rows.at(-1)!.join('  '));
    }
  } finally {
    await connection.close();
    await server.stop();
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const row of rows) console.log(row.map((cell, i) => cell.padEnd(widths[i]!)).join('  '));
  if (latencies.length > 0) {
    const sorted = [...latencies].sort((a, b) => a - b);
    console.log(
      `\nrestart after the new worker's spawn: median ${sorted[Math.floor(sorted.length / 2)]} ms, ` +
        `max ${sorted.at(-1)} ms over ${sorted.length} kills (goal: under ${TARGET_MS} ms)`,
    );
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
