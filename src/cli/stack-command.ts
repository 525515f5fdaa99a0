/** `tunnel-lab stack up|down|status`: docker-compose.yml's stack run natively (src/stack/stack.ts). */
import { settings } from '../config.js';
import { UsageError } from '../errors.js';
import { stackDown, stackStatus, stackUp } from '../stack/stack.js';
import { commandSpec, parseCommand, usageHint, type Out } from './spec.js';

const spec = () => commandSpec('stack');

function port(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 65535) {
    throw new UsageError(`--${name} needs a port number, got ${JSON.stringify(value)}`, usageHint(spec()));
  }
  return n;
}

export async function stackCommand(argv: string[], out: Out): Promise<number> {
  const { values, positionals } = parseCommand(spec(), argv);
  const config = settings();
  const verb = positionals[0];
  if (verb === 'up') {
    const options = {
      projectRoot: config.projectRoot,
      stateRoot: config.stateRoot,
      port: port(values.port, 'port', 7233),
      uiPort: port(values['ui-port'], 'ui-port', 8080),
      postgresPort: port(values['postgres-port'], 'postgres-port', 5432),
      log: out,
    };
    await stackUp(options);
    out('');
    out(`the stack is up. Use it with:`);
    out(
      `  export TEMPORAL_ADDRESS=127.0.0.1:${options.port} TEMPORAL_UI_URL=http://127.0.0.1:${options.uiPort}`,
    );
    out('  tunnel-lab run hello --no-worker');
    return 0;
  }
  if (verb === 'down') {
    await stackDown(config.stateRoot, out, values.purge === true);
    return 0;
  }
  if (verb === 'status') {
    const rows = await stackStatus(config.stateRoot);
    for (const row of rows) {
      out(
        row.running
          ? `${row.name.padEnd(11)} running  pid ${row.pid}  ${row.address}`
          : `${row.name.padEnd(11)} stopped`,
      );
    }
    return rows.every((r) => r.running) ? 0 : 3;
  }
  throw new UsageError(`stack needs up, down or status, got ${JSON.stringify(verb)}`, usageHint(spec()));
}
