/**
 * A worker SIGKILLed during a step of tls-passthrough on the simulated lab: the run completes, no completed
 * step runs again, and the killed step starts again within seconds of the new worker's spawn (the new
 * worker hands the dead one's step back instead of waiting out its heartbeat timeout). Three kinds of step
 * here: a lab action, a probe in a parallel group, and the finally step; `npm run bench:kill` kills during
 * every step in turn and prints the figures.
 */
import { Client, Connection } from '@temporalio/client';
import { killDuring } from '../bench/kill-during.js';
import { root, serverAddress } from './support/temporal.js';

let connection: Connection;
let client: Client;
beforeAll(async () => {
  connection = await Connection.connect({ address: serverAddress() });
  client = new Client({ connection });
});
afterAll(() => connection?.close());

it.each(['vms', 'tunnelled-a', 'teardown'])(
  'recovers from a worker killed during %s within seconds, running no completed step again',
  async (step) => {
    const result = await killDuring(client, {
      root,
      address: serverAddress(),
      playbook: 'tls-passthrough',
      lab: 'sim',
      step,
    });
    console.log(`${step}: restarted ${result.restartMs} ms after the new worker's spawn`);
    expect(result).toMatchObject({ caught: true, status: 'passed', rescheduled: [] });
    // Without the hand-back the step waits out its heartbeat timeout (30 s for the lab actions).
    expect(result.restartMs).toBeLessThan(5_000);
  },
  180_000,
);
