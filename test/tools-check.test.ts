import { chmod, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { compareVersions, toolsCheckAction } from '../activities/tools-check.js';
import { simLab, type SimLab } from './support/sim-lab.js';

describe('compareVersions', () => {
  it('orders x.y.z releases numerically, whatever their prefix', () => {
    expect(compareVersions('v1.36.1', '1.30.0')).toBe(1);
    expect(compareVersions('2.2.19', '2.3.0')).toBe(-1);
    expect(compareVersions('2.10.0', '2.9.9')).toBe(1);
    expect(compareVersions('1.30', '1.30.0')).toBe(0);
  });
});

describe('tools.check', () => {
  let lab: SimLab;
  afterEach(async () => {
    await lab?.close();
  });

  it("reports the lab's tools with what each must be", async () => {
    lab = await simLab();
    const { output } = await lab.run(toolsCheckAction, {});
    expect(output).toEqual({
      tools: [
        { tool: 'vagrant', program: lab.def.tools.vagrant, version: '2.3.4', wants: '>= 2.3.0' },
        {
          tool: 'kubectl',
          program: lab.def.tools.kubectl,
          version: expect.stringMatching(/^v1\.\d+\.\d+$/),
          wants: '>= 1.30.0',
        },
        { tool: 'istioctl', program: lab.def.tools.istioctl, version: '1.28.3', wants: '= 1.28.3' },
      ],
    });
  });

  it('refuses a vagrant older than the actions need, at once and naming the lab file', async () => {
    lab = await simLab((def, stateRoot) => {
      def.tools.vagrant = path.join(stateRoot, 'old-vagrant');
    });
    const old = lab.def.tools.vagrant!;
    await writeFile(old, '#!/bin/sh\necho "Vagrant 2.2.19"\n');
    await chmod(old, 0o755);
    const err = await lab.run(toolsCheckAction, { tools: ['vagrant'] }).then(
      () => new Error('expected a failure'),
      (e: unknown) => e as Error,
    );
    expect(err).toMatchObject({ type: 'LabConfigError', nonRetryable: true });
    expect(err.message).toBe(
      `${old} is vagrant 2.2.19; the lab actions need vagrant 2.3.0 or later ` +
        `(install a newer one, or set tools.vagrant in ${lab.labRef})`,
    );
  });

  it('fails non-retryably when a tool is missing', async () => {
    lab = await simLab((def, stateRoot) => {
      def.tools.kubectl = path.join(stateRoot, 'no-such-kubectl');
    });
    const err = await lab.run(toolsCheckAction, { tools: ['kubectl'] }).then(
      () => new Error('expected a failure'),
      (e: unknown) => e as Error,
    );
    expect(err).toMatchObject({ type: 'CommandNotFoundError', nonRetryable: true });
    expect(err.message).toMatch(/no-such-kubectl not found: install kubectl or set tools\.kubectl in /);
  });
});
