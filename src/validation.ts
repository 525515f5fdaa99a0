/** True when `pattern` compiles as a JavaScript regular expression. */
export function isRegex(pattern: string): boolean {
  try {
    new RegExp(pattern);
    return true;
  } catch {
    return false;
  }
}
