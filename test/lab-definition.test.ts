/**
 * Lab files are checked like playbooks: every problem at its file, line, column and field, in one pass.
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PlaybookError } from '../src/errors.js';
import { loadLab } from '../src/lab/definition.js';
import { root } from './support/temporal.js';

async function labWith(edit: (text: string) => string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lab-def-'));
  const file = path.join(dir, 'broken.yaml');
  await writeFile(file, edit(await readFile(path.join(root, 'labs', 'sim.yaml'), 'utf8')));
  return file;
}

async function problemsOf(file: string): Promise<string[]> {
  const err = await loadLab(file, { projectRoot: root, stateDir: path.dirname(file) }).catch(
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(PlaybookError);
  return (err as PlaybookError).problems.map(
    (p) => `${path.basename(p.file)}:${p.line}:${p.column}: ${p.path}: ${p.message}`,
  );
}

describe('lab files', () => {
  it('names a wrong field at its line and column, with the field path as playbooks word it', async () => {
    const file = await labWith((text) =>
      text.replace('lifetime: run', 'lifetime: forever').replace(/^( {4}role: )proxy$/m, '$1proxxy'),
    );
    const problems = await problemsOf(file);
    expect(problems[0]).toMatch(/^broken\.yaml:\d+:11: lifetime: /);
    // Fixing the first shows the next, with its own place.
    await writeFile(file, (await readFile(file, 'utf8')).replace('lifetime: forever', 'lifetime: run'));
    expect(await problemsOf(file)).toEqual([
      expect.stringMatching(/^broken\.yaml:\d+:11: machines\.external-proxy\.role: .*"proxxy"/),
    ]);
  });

  it('gives every load a definition of its own, and reads a changed file again', async () => {
    const file = await labWith((text) => text);
    const options = { projectRoot: root, stateDir: path.dirname(file) };
    const first = await loadLab(file, options);
    const firstMachine = Object.keys(first.machines)[0]!;
    first.machines[firstMachine]!.ip = '10.9.9.9';
    first.network.appPort = 1;
    const second = await loadLab(file, options);
    expect(second.machines[firstMachine]!.ip).not.toBe('10.9.9.9');
    expect(second.network.appPort).not.toBe(1);
    await writeFile(file, (await readFile(file, 'utf8')).replace(/^name: .*$/m, 'name: renamed'));
    expect((await loadLab(file, options)).name).toBe('renamed');
  });

  it('refuses an alias bomb without expanding it, naming the file', async () => {
    const file = await labWith(
      (text) =>
        `a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n${text}`,
    );
    expect(await problemsOf(file)).toEqual([
      expect.stringMatching(/^broken\.yaml:1:1: : the YAML cannot be expanded: /),
    ]);
  });

  it('loads labs/existing.example.yaml, and refuses an existing lab that mixes in Vagrant or lacks what it needs', async () => {
    const example = await loadLab('existing.example', { projectRoot: root, stateDir: os.tmpdir() });
    expect(example).toMatchObject({ kind: 'existing', cluster: { kubeconfig: '$KUBECONFIG' } });
    expect(example.vagrant).toBeUndefined();

    const dir = await mkdtemp(path.join(os.tmpdir(), 'lab-def-'));
    const file = path.join(dir, 'broken.yaml');
    const text = await readFile(path.join(root, 'labs', 'existing.example.yaml'), 'utf8');
    await writeFile(
      file,
      text
        .replace(/hostKey: SHA256:A+/, 'hostKey: d7LrMniX')
        .replace(
          'machines:\n',
          'vagrant: { dir: ., provider: sim }\nmachines:\n  k8s: { role: kubernetes, ip: 10.0.0.20 }\n',
        ),
    );
    expect(await problemsOf(file)).toEqual([
      expect.stringMatching(
        /^broken\.yaml:\d+:\d+: machines\.external-proxy\.ssh\.hostKey: must be a fingerprint/,
      ),
      expect.stringMatching(/^broken\.yaml:\d+:\d+: vagrant: a lab of kind existing has no Vagrant machines/),
      expect.stringMatching(
        /^broken\.yaml:\d+:\d+: machines\.k8s\.role: a lab of kind existing reaches its cluster through cluster\.kubeconfig/,
      ),
    ]);
    await writeFile(
      file,
      text.replace('      identityFile: ~/.ssh/id_ed25519\n', '').replace('kind: existing\n', ''),
    );
    const problems = await problemsOf(file);
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(
          /: machines\.external-proxy\.ssh: names no credential: set identityFile, or agent: true$/,
        ),
        expect.stringMatching(/: vagrant: a lab of kind vagrant needs a vagrant section/),
      ]),
    );
  });
});
