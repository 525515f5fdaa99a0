/** Whether a path stays where it should: the checks that keep inputs from reaching the rest of the host. */
import path from 'node:path';

/** True for a relative path that stays inside the folder it is relative to (not absolute, no way up). */
export function staysInside(relative: string): boolean {
  const normal = path.normalize(relative);
  return !path.isAbsolute(relative) && normal !== '..' && !normal.startsWith(`..${path.sep}`);
}

/** True when `target` is `dir` or lies below it (absolute paths; symbolic links are not followed here). */
export function within(dir: string, target: string): boolean {
  return staysInside(path.relative(dir, target));
}
