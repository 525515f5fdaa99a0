/**
 * Finds the `temporal` CLI (which embeds the dev server and the Web UI): $TEMPORAL_CLI, then PATH, then the
 * project's tool folder; failing those, builds it from the Go module proxy into that folder.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { TemporalCliError } from '../errors.js';

export const TEMPORAL_CLI_MODULE = 'github.com/temporalio/cli/cmd/temporal';
export const TEMPORAL_CLI_VERSION = 'v1.5.1';

export function toolDir(projectRoot: string): string {
  return path.join(projectRoot, '.tools', 'bin');
}

/** The CLI's path, or undefined when none is installed. */
export async function findTemporalCli(projectRoot: string, env = process.env): Promise<string | undefined> {
  if (env.TEMPORAL_CLI) {
    if (!existsSync(env.TEMPORAL_CLI))
      throw new TemporalCliError(`TEMPORAL_CLI=${env.TEMPORAL_CLI} does not exist`);
    return env.TEMPORAL_CLI;
  }
  const local = path.join(toolDir(projectRoot), 'temporal');
  if (existsSync(local)) return local;
  const which = await execa('which', ['temporal'], { reject: false });
  return which.exitCode === 0 && which.stdout ? which.stdout.trim() : undefined;
}

/** Finds the CLI, building it with `go install` when it is missing. */
export async function ensureTemporalCli(
  projectRoot: string,
  log: (line: string) => void = () => {},
): Promise<string> {
  const found = await findTemporalCli(projectRoot);
  if (found) return found;
  const go = await execa('go', ['version'], { reject: false });
  if (go.exitCode !== 0) {
    throw new TemporalCliError(
      'the Temporal CLI is not installed and Go is not available to build it. Install Go 1.23+ and run ' +
        `\`GOBIN=${toolDir(projectRoot)} go install ${TEMPORAL_CLI_MODULE}@${TEMPORAL_CLI_VERSION}\`, ` +
        'or install the temporal CLI and put it on PATH (or set TEMPORAL_CLI).',
    );
  }
  log(
    `building the Temporal CLI ${TEMPORAL_CLI_VERSION} with ${go.stdout.trim()} (a few minutes the first time)...`,
  );
  const build = await execa('go', ['install', `${TEMPORAL_CLI_MODULE}@${TEMPORAL_CLI_VERSION}`], {
    env: { GOBIN: toolDir(projectRoot) },
    reject: false,
    all: true,
  });
  const built = path.join(toolDir(projectRoot), 'temporal');
  if (build.exitCode !== 0 || !existsSync(built)) {
    throw new TemporalCliError(
      `go install ${TEMPORAL_CLI_MODULE}@${TEMPORAL_CLI_VERSION} failed:\n${(build.all ?? '').slice(-2000)}`,
    );
  }
  return built;
}
