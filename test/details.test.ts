import { renderDetails } from '../workflows/details.js';
import type { ScenarioResult } from '../workflows/types.js';

const base = (steps: ScenarioResult['steps'], extra: Partial<ScenarioResult> = {}): ScenarioResult => ({
  playbook: 'tls-passthrough',
  status: 'running',
  steps,
  ...extra,
});

describe('Web UI current details', () => {
  it('says which lab a waiting run waits for, and which run holds it', () => {
    const waiting = base([{ id: 'vms', uses: 'vm.up', phase: 'main', status: 'pending', attempts: 0 }], {
      waitingForLab: { lab: 'vagrant', heldBy: 'tunnel-lab-mtls-123' },
    });
    expect(renderDetails(waiting, 'run-2')).toContain(
      'Now: waiting for lab vagrant, held by run tunnel-lab-mtls-123',
    );
    expect(renderDetails(base([]), 'run-2')).not.toContain('waiting for lab');
  });

  it('lists what a run on a shared cluster creates and changes there, after the steps', () => {
    const steps: ScenarioResult['steps'] = [
      { id: 'tunnel', uses: 'manifest.apply', phase: 'main', status: 'pending', attempts: 0 },
    ];
    const text = renderDetails(
      base(steps, {
        changes: {
          lab: 'mine',
          steps: [{ id: 'tunnel', changes: ['apply EnvoyFilter istio-system/egress-tcp-tunnel'] }],
        },
      }),
      'run-3',
    );
    expect(text).toContain(
      '| tunnel | manifest.apply | · pending | 0 |\n\nWhat the run creates and changes on lab mine:\n\n' +
        '- `tunnel`: apply EnvoyFilter istio-system/egress-tcp-tunnel',
    );
    expect(renderDetails(base(steps), 'run-3')).not.toContain('What the run creates');
  });

  it('names the current step with its target, and the last check with its evidence', () => {
    const text = renderDetails(
      base([
        {
          id: 'blocked',
          uses: 'probe.curl',
          phase: 'main',
          status: 'passed',
          attempts: 1,
          summary: 'probe.curl https://www.google.com from app=curl, expect no answer',
          output: { status: 0, exitCode: 35 },
          evidence: ['no HTTP answer from https://www.google.com: curl exit 35, in pod curl-1'],
        },
        { id: 'mark', uses: 'log.mark', phase: 'main', status: 'passed', attempts: 1 },
        {
          id: 'direct',
          uses: 'probe.curl',
          phase: 'main',
          status: 'running',
          attempts: 2,
          summary: 'probe.curl https://www.wikipedia.org from app=curl',
        },
      ]),
      'run-1',
    );
    expect(text).toContain(
      'Now: `direct` — probe.curl https://www.wikipedia.org from app=curl (attempts so far: 2)',
    );
    expect(text).toContain(
      'Last check: ✔ `blocked` probe.curl https://www.google.com from app=curl, expect no answer',
    );
    // The step's own evidence, not its raw output.
    expect(text).toContain('no HTTP answer from https://www.google.com: curl exit 35, in pod curl-1');
    expect(text).not.toContain('"exitCode"');
    expect(text).toContain('| direct | probe.curl | ▶ running | 2 |');
  });

  it('says why a run is paused and how to resume it', () => {
    const text = renderDetails(
      base(
        [
          {
            id: 'tunnelled',
            uses: 'log.expect',
            phase: 'main',
            status: 'failed',
            attempts: 3,
            error: 'ExpectationError: no line matching /CONNECT/',
          },
        ],
        {
          status: 'paused',
          pausedStep: 'tunnelled',
          error: 'step tunnelled: ExpectationError: no line matching /CONNECT/',
        },
      ),
      'run-2',
    );
    expect(text).toContain(
      'Paused at step `tunnelled`: step tunnelled: ExpectationError: no line matching /CONNECT/',
    );
    expect(text).toContain('`tunnel-lab resume run-2 --retry`');
    expect(text).toContain(
      `temporal workflow update execute -w run-2 --name resume --input '{"action":"retry"}'`,
    );
    expect(text).toContain('Last check: ✘ `tunnelled`');
  });
});
