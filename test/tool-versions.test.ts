import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ToolVersions } from '../src/lab/tool-versions.js';

describe('ToolVersions', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'tool-versions-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function program(name: string, body: string): Promise<string> {
    const file = path.join(dir, name);
    await writeFile(file, `#!/bin/sh\n${body}\n`);
    await chmod(file, 0o755);
    return file;
  }

  function asker(answers: string[]): { ask: () => Promise<string>; asked: () => number } {
    let n = 0;
    return { ask: () => Promise.resolve(answers[Math.min(n++, answers.length - 1)]!), asked: () => n };
  }

  it('asks a program file once, and again once the file changed', async () => {
    const known = new ToolVersions();
    const file = await program('vagrant', 'echo "Vagrant 2.4.1"');
    const first = asker(['2.4.1', '2.4.2']);
    expect(await known.get(file, undefined, first.ask)).toEqual({ version: '2.4.1', remembered: false });
    expect(await known.get(file, undefined, first.ask)).toEqual({ version: '2.4.1', remembered: true });
    expect(first.asked()).toBe(1);

    // An upgrade in place: the same path, another file.
    await program('vagrant', 'echo "Vagrant 2.4.2" # upgraded');
    expect(await known.get(file, undefined, first.ask)).toEqual({ version: '2.4.2', remembered: false });
    expect(first.asked()).toBe(2);
  });

  it('finds a bare name on the search path, and tells two programs apart', async () => {
    const known = new ToolVersions();
    const kubectl = await program('kubectl', 'echo v1.36.1');
    await program('istioctl', 'echo 1.28.3');
    const a = asker(['v1.36.1']);
    const b = asker(['1.28.3']);
    expect((await known.get('kubectl', `/nonexistent${path.delimiter}${dir}`, a.ask)).version).toBe(
      'v1.36.1',
    );
    expect((await known.get(kubectl, undefined, a.ask)).remembered).toBe(true);
    expect((await known.get('istioctl', dir, b.ask)).version).toBe('1.28.3');
    expect([a.asked(), b.asked()]).toEqual([1, 1]);
  });

  it('keeps no answer for a program it cannot find, nor an empty one', async () => {
    const known = new ToolVersions();
    const missing = asker(['']);
    await known.get(path.join(dir, 'no-such-tool'), undefined, missing.ask);
    await known.get('no-such-tool', dir, missing.ask);
    expect(missing.asked()).toBe(2);
    const silent = await program('silent', 'true');
    const empty = asker(['', '1.0.0']);
    expect((await known.get(silent, undefined, empty.ask)).version).toBe('');
    expect(await known.get(silent, undefined, empty.ask)).toEqual({ version: '1.0.0', remembered: false });
  });

  it('passes on a failure to ask, and asks again next time', async () => {
    const known = new ToolVersions();
    const file = await program('kubectl', 'exit 1');
    await expect(known.get(file, undefined, () => Promise.reject(new Error('exit 1')))).rejects.toThrow(
      'exit 1',
    );
    expect(await known.get(file, undefined, () => Promise.resolve('v1.36.1'))).toEqual({
      version: 'v1.36.1',
      remembered: false,
    });
  });
});
