/**
 * Inputs are data, never a key to the host: playbook references stay inside the playbook folders, run ids
 * name one folder each, manifest paths stay inside manifests/, and --var values keep the type the
 * playbook gives them, and their size in bounds.
 */
import { mkdtemp, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { actions } from '../activities/registry.js';
import { typedVars } from '../src/cli/commands.js';
import { PlaybookError, UsageError } from '../src/errors.js';
import { staysInside } from '../src/paths.js';
import { loadPlaybookFile, MAX_VAR_BYTES, parsePlaybook, runPlaybookFile } from '../src/playbook/load.js';
import { folderName, runDir } from '../src/state-layout.js';
import { root } from './support/temporal.js';

const playbooks = path.join(root, 'playbooks');

describe('the playbook a run names', () => {
  it('is a name in playbooks/ or a .yaml file inside an allowed folder', async () => {
    expect(runPlaybookFile('hello', [playbooks])).toBe(path.join(playbooks, 'hello.yaml'));
    const extra = await mkdtemp(path.join(os.tmpdir(), 'allowed-'));
    await writeFile(path.join(extra, 'mine.yaml'), 'name: mine\nsteps: []\n');
    expect(runPlaybookFile(path.join(extra, 'mine.yaml'), [playbooks, extra])).toBe(
      path.join(extra, 'mine.yaml'),
    );
  });

  it.each([
    ['a traversal', '../../../../../../etc/passwd'],
    ['an absolute path elsewhere', '/etc/passwd'],
    ['a .yaml file elsewhere', '/etc/not-a-playbook.yaml'],
    ['a traversal that ends in .yaml', `${playbooks}/../package.yaml`],
  ])('refuses %s without reading it', (_, ref) => {
    const err = (() => {
      try {
        runPlaybookFile(ref, [playbooks]);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(PlaybookError);
    expect((err as PlaybookError).message).toMatch(
      /a playbook is a \.yaml or \.yml file|is outside the folders/,
    );
    expect((err as PlaybookError).message).not.toMatch(/root:/);
  });

  it('is read only when it is a .yaml file, also by validate and the CLI (no line of another file is quoted)', async () => {
    const err = await loadPlaybookFile('/etc/passwd', { playbooksDir: playbooks, actions }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(PlaybookError);
    expect((err as PlaybookError).message).toMatch(/a playbook is a \.yaml or \.yml file/);
    expect((err as PlaybookError).message).not.toMatch(/root:/);
  });

  it('refuses a symbolic link in an allowed folder that leads out of it', async () => {
    const extra = await mkdtemp(path.join(os.tmpdir(), 'allowed-'));
    const outside = await mkdtemp(path.join(os.tmpdir(), 'outside-'));
    await writeFile(path.join(outside, 'x.yaml'), 'name: x\n');
    await symlink(path.join(outside, 'x.yaml'), path.join(extra, 'link.yaml'));
    expect(() => runPlaybookFile(path.join(extra, 'link.yaml'), [playbooks, extra])).toThrow(
      /is outside the folders/,
    );
  });
});

describe('run ids as folder names', () => {
  it('gives every id its own folder inside runs/', () => {
    expect(folderName('tls-passthrough-20261201-1')).toBe('tls-passthrough-20261201-1');
    expect(folderName('a/b')).not.toBe(folderName('a_b'));
    for (const id of ['..', '.', '../x', 'a/../../b', '.hidden']) {
      const dir = runDir('/state', id);
      expect(path.dirname(dir)).toBe('/state/runs');
      expect(path.basename(dir)).not.toMatch(/^\./);
    }
  });
});

describe('manifest paths', () => {
  it('stay inside the manifests folder, checked when the playbook is validated', () => {
    expect(staysInside('common/curl.yaml')).toBe(true);
    expect(staysInside('common/../common/curl.yaml')).toBe(true);
    for (const p of ['../x.yaml', '/etc/hosts', 'a/../../x.yaml', '..']) expect(staysInside(p)).toBe(false);
    const yaml =
      'name: esc\nsteps:\n  - id: a\n    uses: manifest.apply\n    with: { files: [../../etc/passwd] }\n';
    expect(() => parsePlaybook(yaml, 'esc.yaml', { playbooksDir: playbooks, actions })).toThrow(
      /esc\.yaml:5:21: steps\[0\]\.with\.files\[0\]: must be a path inside the manifests\/ folder/,
    );
  });
});

describe('--var values', () => {
  const declared = { host: 'www.google.com', port: 443, verbose: false, hosts: ['a'], extra: { a: 1 } };

  it('stay the text typed for a text variable, YAML syntax and all', () => {
    expect(typedVars({ host: '123', note: '&anchor x' }, declared)).toEqual({
      host: '123',
      note: '&anchor x',
    });
    expect(typedVars({ host: 'two\nlines' }, declared)).toEqual({ host: 'two\nlines' });
  });

  it('take the type of the playbook default otherwise, and name the --var when they cannot', () => {
    expect(typedVars({ port: '8443', verbose: 'true', hosts: '[x, y]', extra: '{b: 2}' }, declared)).toEqual({
      port: 8443,
      verbose: true,
      hosts: ['x', 'y'],
      extra: { b: 2 },
    });
    expect(() => typedVars({ port: 'https' }, declared)).toThrow(
      new UsageError("--var port=https: the playbook's port is a number"),
    );
    expect(() => typedVars({ verbose: 'yes' }, declared)).toThrow(/--var verbose=yes: .* true or false/);
    expect(() => typedVars({ hosts: 'x' }, declared)).toThrow(
      /--var hosts=x: the playbook's hosts is a list/,
    );
  });

  it('are refused when larger than a variable may hold, without being quoted', () => {
    const huge = 'x'.repeat(MAX_VAR_BYTES + 1);
    const yaml =
      "name: big\nvars: { host: a }\nsteps:\n  - { id: a, uses: exec, with: { command: [echo, '${{ vars.host }}'] } }\n";
    let message = '';
    try {
      parsePlaybook(yaml, 'big.yaml', { playbooksDir: playbooks, actions, vars: { host: huge } });
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(/the run's value of "host" is 16387 bytes; a variable holds at most 16384/);
    expect(message).not.toContain('xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx');
  });
});
