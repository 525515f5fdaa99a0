/**
 * The scenarios on a kept lab, as a user's second and third run on real VMs meet it: the simulated lab
 * with `lifetime: lab` keeps its machines, cluster and certificates between runs, so each run finds what
 * the last one applied and provisioned. The playbooks must start from a known state anyway.
 */
import path from 'node:path';
import { execa } from 'execa';
import type { ScenarioInput, ScenarioResult } from '../workflows/types.js';
import { outcome, root, start, type TestLab, useWorker } from './support/temporal.js';
import { simLabVariant, variant } from './support/variants.js';

let lab: TestLab;
useWorker('kept', (created) => (lab = created));

/** labs/sim.yaml as a kept lab, written into the worker's state root. */
function keptLab(): Promise<string> {
  return simLabVariant(lab.stateRoot, 'kept', (def) => {
    def.lifetime = 'lab';
  });
}

const failedSteps = (result: ScenarioResult) =>
  result.steps.filter((s) => s.status === 'failed').map((s) => `${s.id}: ${s.error ?? ''}`);

describe('a kept simulated lab', () => {
  let labFile: string;
  beforeAll(async () => {
    labFile = await keptLab();
  });
  afterAll(async () => {
    // Whatever a failed run left: the kept lab's machines (sshd, nginx, Envoy) stop with it.
    const env = {
      ...process.env,
      TUNNEL_LAB_CONFIG: labFile,
      TUNNEL_LAB_STATE_DIR: path.join(lab.stateRoot, 'labs', 'kept'),
      TUNNEL_LAB_SIM_STATE: path.join(lab.stateRoot, 'labs', 'kept', 'sim'),
    };
    await execa(path.join(root, 'sim', 'bin', 'vagrant'), ['destroy', '-f'], {
      env,
      cwd: env.TUNNEL_LAB_STATE_DIR,
      reject: false,
    });
  });

  const run = async (playbook: string, teardown = 'keep'): Promise<ScenarioResult> => {
    const input: ScenarioInput = { playbook, lab: labFile, vars: { teardown } };
    return outcome(await start(lab, input));
  };

  it('runs tls-passthrough, tls-passthrough, mtls, tls-passthrough in a row, each from a known state', async () => {
    const first = await run('tls-passthrough');
    expect(failedSteps(first)).toEqual([]);
    const byId = (result: ScenarioResult) => Object.fromEntries(result.steps.map((s) => [s.id, s]));
    expect(byId(first)['clean-slate']!.output).toMatchObject({ deleted: [] });
    // Only a shared cluster's runs work out their changes up front (tunnel-lab run --dry-run does for any lab).
    expect(first.changes).toBeUndefined();
    // A Vagrant lab keeps what a run applied, for a look afterwards: the finally step that would remove it says so.
    expect(byId(first)['leave-nothing']).toMatchObject({ status: 'skipped' });
    expect(byId(first)['leave-nothing']!.evidence).toEqual([
      expect.stringMatching(/^skipped: the lab kept keeps what a run applied .*keepObjects/),
    ]);

    const second = await run('tls-passthrough');
    expect(failedSteps(second)).toEqual([]);
    // The machines were kept, and what the first run applied was removed before the blocked probe.
    expect(byId(second).vms!.output).toMatchObject({ started: [], alreadyRunning: expect.any(Array) });
    expect((byId(second)['clean-slate']!.output as { deleted: string[] }).deleted).toEqual(
      expect.arrayContaining([
        'serviceentry.networking.istio.io "www.google.com" deleted from default namespace',
        'envoyfilter.networking.istio.io "egress-tcp-tunnel" deleted from istio-system namespace',
      ]),
    );

    const mtls = await run('mtls');
    expect(failedSteps(mtls)).toEqual([]);
    expect(byId(mtls)['call-app']!.output).toMatchObject({ status: 200 });

    const last = await run('tls-passthrough', 'destroy');
    expect(failedSteps(last)).toEqual([]);
    expect(last.status).toBe('passed');
  }, 300_000);

  it('without the clean slate, a second tls-passthrough fails at the blocked probe', async () => {
    const file = await variant('tls-passthrough', (steps) =>
      steps
        .filter((s) => s.id !== 'clean-slate')
        .map((s) => (s.id === 'blocked' ? { ...s, retry: { attempts: 2 } } : s)),
    );
    expect(failedSteps(await run(file))).toEqual([]);
    const again = await run(file, 'destroy');
    expect(again.status).toBe('failed');
    // The first run's ServiceEntries, routes and tunnel are still applied: the "blocked" host gets out.
    expect(again.error).toMatch(
      /step blocked: ExpectationError: expected https:\/\/www\.google\.com to fail/,
    );
  }, 240_000);
});
