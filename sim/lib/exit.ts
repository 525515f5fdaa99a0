/** Ends a stand-in's command with the tool's message; thrown, so that a held state lock is released on the way out. */
export class CliExit extends Error {
  constructor(
    message: string,
    readonly code = 1,
  ) {
    super(message);
  }
}

export function abort(message: string, code = 1): never {
  throw new CliExit(message, code);
}
