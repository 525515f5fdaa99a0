/** The lint rules that keep workflow code deterministic, tried on real workflow files with one bad import. */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ESLint } from 'eslint';
import { root } from './support/temporal.js';

describe('the workflow lint rule', () => {
  const eslint = new ESLint({ cwd: root });
  const file = path.join(root, 'workflows', 'details.ts');

  it.each(['node:fs/promises', 'fs/promises', 'node:dns', 'node:child_process', '../src/lab/runtime.js'])(
    'refuses an import of %s in workflow code',
    async (module) => {
      const text = `import '${module}';\n${await readFile(file, 'utf8')}`;
      const [result] = await eslint.lintText(text, { filePath: file });
      expect(result!.messages.map((m) => m.ruleId)).toContain('no-restricted-imports');
    },
    30_000,
  );

  it('accepts the workflow code as it is', async () => {
    const [result] = await eslint.lintFiles([file]);
    expect(result!.messages).toEqual([]);
  }, 30_000);
});
