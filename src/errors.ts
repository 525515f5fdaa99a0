/**
 * The project's error classes. Activities turn them into Temporal ApplicationFailures whose `type` is the
 * class name, so retry policies and the CLI can tell them apart; the CLI maps them to exit codes in one place.
 */

/**
 * Base of the project's errors; `nonRetryable` errors fail a step at once, whatever its retry policy, and
 * `exitStatus` is the CLI's exit code when one reaches it (see src/cli/spec.ts EXIT_CODES).
 */
export class TunnelLabError extends Error {
  /** A getter on the class, so that the registry can read it without making an error. */
  get nonRetryable(): boolean {
    return false;
  }
  readonly exitStatus: number = 1;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Where in a YAML file something is wrong. */
export interface SourceLocation {
  file: string;
  line: number;
  column: number;
  /** Dotted field path, e.g. `steps[2].with.command`. */
  path: string;
}

/** A playbook that cannot run as written; names the file, line, column and field. */
export class PlaybookError extends TunnelLabError {
  override get nonRetryable(): boolean {
    return true;
  }
  override readonly exitStatus = 2;
  constructor(
    readonly problems: (SourceLocation & { message: string })[],
    options?: { cause?: unknown },
  ) {
    super(problems.map(formatProblem).join('\n'), options);
  }
}

export function formatProblem(p: SourceLocation & { message: string }): string {
  // Line 0: the file as a whole (missing, unreadable), which has no position.
  const where = p.line > 0 ? `${p.file}:${p.line}:${p.column}` : p.file;
  return p.path ? `${where}: ${p.path}: ${p.message}` : `${where}: ${p.message}`;
}

/** A step's input does not fit its action's schema (when a run bypasses the loader's checks). */
export class InputError extends TunnelLabError {
  override get nonRetryable(): boolean {
    return true;
  }
  override readonly exitStatus = 2;
}

/** A command ran but its result is not what the step expects; worth retrying. */
export class ExpectationError extends TunnelLabError {}

/** A local tool (vagrant, kubectl, ...) is missing or cannot run; retrying will not help. */
export class CommandNotFoundError extends TunnelLabError {
  override get nonRetryable(): boolean {
    return true;
  }
}

/** The lab definition lacks something an action needs (a tool, a machine, a file); fix the lab file. */
export class LabConfigError extends TunnelLabError {
  override get nonRetryable(): boolean {
    return true;
  }
}

/** A lab tool failed; keeps the command and the end of its stderr. */
export class LabToolError extends TunnelLabError {
  constructor(
    readonly command: string[],
    readonly exitCode: number | undefined,
    readonly stderrTail: string,
    options?: { cause?: unknown },
  ) {
    super(
      `${command.join(' ')} failed${exitCode === undefined ? '' : ` with exit code ${exitCode}`}` +
        (stderrTail ? `: ${stderrTail}` : ''),
      options,
    );
  }
}

/** The mesh would not do what a step expects, or would reject the config; the manifests must change. */
export class MeshCheckError extends TunnelLabError {
  override get nonRetryable(): boolean {
    return true;
  }
}

/** A template that cannot be read or rendered; fixing the template or the values is the only cure. */
export class ManifestError extends TunnelLabError {
  override get nonRetryable(): boolean {
    return true;
  }
}

/** The client certificate files are missing or do not belong together; run certs.generate first. */
export class MissingCertificatesError extends TunnelLabError {
  override get nonRetryable(): boolean {
    return true;
  }
}

/** The Istio oracle cannot be built or run (no Go, a failed build, a crash); retrying will not help. */
export class OracleError extends TunnelLabError {
  override get nonRetryable(): boolean {
    return true;
  }
}

/** The Temporal CLI (dev server) cannot be found or built. */
export class TemporalCliError extends TunnelLabError {
  override readonly exitStatus = 3;
}

/** The production stack (`tunnel-lab stack`) cannot be built, started or stopped as asked. */
export class StackError extends TunnelLabError {
  override readonly exitStatus = 3;
}

/** No Temporal server answers where the CLI was told to look. */
export class TemporalUnavailableError extends TunnelLabError {
  override readonly exitStatus = 3;
}

/**
 * A command line that cannot run as given: an unknown command, option or name, a missing argument. `usage`
 * is the command's usage line, printed under the message.
 */
export class UsageError extends TunnelLabError {
  override readonly exitStatus = 2;
  constructor(
    message: string,
    readonly usage?: string,
  ) {
    super(message);
  }
}

/** A user-facing command failed in a way already explained; carries the exit code. */
export class ExitError extends TunnelLabError {
  constructor(
    override readonly exitStatus: number,
    message = '',
  ) {
    super(message);
  }
}
