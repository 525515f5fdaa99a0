/** Folders of built or fetched tools under `.tools/`, which are there whole or not at all. */
import { existsSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

const COMPLETE = '.complete';

/** Whether `dir` was filled completely (see fillFolder). */
export function isComplete(dir: string): boolean {
  return existsSync(path.join(dir, COMPLETE));
}

/**
 * Fills `dir` as a whole: `fill` writes into a partial folder beside it, which replaces `dir` once `fill`
 * is done. An interrupted fill leaves no `dir` that looks complete.
 */
export async function fillFolder(dir: string, fill: (partial: string) => Promise<void>): Promise<void> {
  const partial = `${dir}.${process.pid}.partial`;
  await rm(partial, { recursive: true, force: true });
  await mkdir(partial, { recursive: true });
  try {
    await fill(partial);
    await writeFile(path.join(partial, COMPLETE), `${new Date().toISOString()}\n`);
    await rm(dir, { recursive: true, force: true });
    await rename(partial, dir);
  } finally {
    await rm(partial, { recursive: true, force: true });
  }
}
