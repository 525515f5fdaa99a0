import { chmod, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { checkTool, compareVersions, toolsCheckAction } from '../activities/tools-check.js';
import { ToolVersions } from '../src/lab/tool-versions.js';
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

  it("keeps a tool's release for the worker's next runs until the program's file changes", async () => {
    lab = await simLab((def, stateRoot) => {
      def.tools.vagrant = path.join(stateRoot, 'counting-vagrant');
    });
    const program = lab.def.tools.vagrant!;
    const asked = path.join(lab.stateRoot, 'asked');
    const write = (version: string) =>
      writeFile(program, `#!/bin/sh\necho x >> '${asked}'\necho "Vagrant ${version}"\n`, { mode: 0o755 });
    await write('2.4.1');
    const known = new ToolVersions();
    const wants = '>= 2.3.0';
    const vagrant = { tool: 'vagrant', program, wants };
    expect(await checkTool(lab.runtime, 'vagrant', known)).toEqual({ ...vagrant, version: '2.4.1' });
    expect(await checkTool(lab.runtime, 'vagrant', known)).toEqual({
      ...vagrant,
      version: '2.4.1',
      remembered: true,
    });
    expect((await readFile(asked, 'utf8')).split('\n').filter(Boolean)).toHaveLength(1);
    // Replaced by an older release: asked again, and refused.
    await write('2.2.19');
    await expect(checkTool(lab.runtime, 'vagrant', known)).rejects.toThrow(/is vagrant 2\.2\.19;/);
    expect((await readFile(asked, 'utf8')).split('\n').filter(Boolean)).toHaveLength(2);
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
