/**
 * The releases the lab's tool programs reported, kept by a worker between runs: asking is a program's
 * start (seconds of Ruby for Vagrant, a Node start for a simulated lab's tool), and a program reports the
 * same release while its file stays the same. A program is known by the file it resolves to: its real
 * path, device, inode, size, and modification and change times. A tool upgraded in place, or another
 * file put at its path, is asked again; a wrapper script is known by its own file.
 */
import { realpath, stat } from 'node:fs/promises';
import path from 'node:path';

export class ToolVersions {
  private readonly known = new Map<string, string>();

  /**
   * The release `program` reports, from `ask` unless the same file answered before. `searchPath` is
   * where a bare program name is looked up (the lab's PATH). Only a non-empty answer is kept.
   */
  async get(
    program: string,
    searchPath: string | undefined,
    ask: () => Promise<string>,
  ): Promise<{ version: string; remembered: boolean }> {
    const key = await fileKey(program, searchPath);
    const kept = key === undefined ? undefined : this.known.get(key);
    if (kept !== undefined) return { version: kept, remembered: true };
    const version = await ask();
    if (key !== undefined && version) this.known.set(key, version);
    return { version, remembered: false };
  }
}

/** What identifies the file `program` runs, or undefined when it is not found (asking says why). */
async function fileKey(program: string, searchPath: string | undefined): Promise<string | undefined> {
  const candidates = program.includes('/')
    ? [path.resolve(program)]
    : (searchPath ?? '')
        .split(path.delimiter)
        .filter((dir) => dir !== '')
        .map((dir) => path.join(dir, program));
  for (const candidate of candidates) {
    try {
      const [real, st] = await Promise.all([realpath(candidate), stat(candidate)]);
      if (!st.isFile()) continue;
      return [real, st.dev, st.ino, st.size, st.mtimeMs, st.ctimeMs].join('\0');
    } catch {
      // Not there: the next folder of the search path.
    }
  }
  return undefined;
}
