/**
 * Command-line parsing for the stand-in tools, with the rules of the Go flag library (pflag) that kubectl
 * and istioctl use: flags anywhere among the arguments, `--flag value`, `--flag=value`, `-f value`,
 * `-fvalue`, combined short booleans (`-it`), and `--` ending the flags.
 */

/** One flag the tool knows; `value` flags take an argument, the others are booleans. */
export interface FlagSpec {
  value: boolean;
  short?: string;
  /** pflag's NoOptDefVal: the value of a value flag given without `=value` (then it takes no argument). */
  optional?: string;
}

export interface ParsedArgs {
  /** Values by long flag name, in order of appearance (booleans are `"true"` or `"false"`). */
  flags: Map<string, string[]>;
  positionals: string[];
  /** What came after `--`, when it did. */
  rest?: string[];
}

/** A command line the tool would reject, with the message pflag prints. */
export class UsageError extends Error {}

/** Parses `argv` against `spec` (long name → flag). */
export function parseArgs(argv: string[], spec: Record<string, FlagSpec>): ParsedArgs {
  const byShort = new Map(
    Object.entries(spec)
      .filter(([, flag]) => flag.short)
      .map(([name, flag]) => [flag.short!, name]),
  );
  const flags = new Map<string, string[]>();
  const positionals: string[] = [];
  const add = (name: string, value: string) => flags.set(name, [...(flags.get(name) ?? []), value]);

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') return { flags, positionals, rest: argv.slice(i + 1) };
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
      const flag = spec[name];
      if (!flag) throw new UsageError(`unknown flag: --${name}`);
      if (eq !== -1) add(name, arg.slice(eq + 1));
      else if (!flag.value) add(name, 'true');
      else if (flag.optional !== undefined) add(name, flag.optional);
      else if (i + 1 < argv.length) add(name, argv[++i]!);
      else throw new UsageError(`flag needs an argument: --${name}`);
      continue;
    }
    if (arg.startsWith('-') && arg.length > 1) {
      for (let c = 1; c < arg.length; c++) {
        const letter = arg[c]!;
        const name = byShort.get(letter);
        if (!name) throw new UsageError(`unknown shorthand flag: '${letter}' in ${arg}`);
        if (!spec[name]!.value) {
          add(name, 'true');
          continue;
        }
        const attached = arg.slice(c + 1).replace(/^=/, '');
        if (attached) add(name, attached);
        else if (i + 1 < argv.length) add(name, argv[++i]!);
        else throw new UsageError(`flag needs an argument: '${letter}' in ${arg}`);
        break;
      }
      continue;
    }
    positionals.push(arg);
  }
  return { flags, positionals };
}

/** The last value of a flag (pflag keeps the last one for scalar flags). */
export function flagValue(args: ParsedArgs, name: string): string | undefined {
  return args.flags.get(name)?.at(-1);
}

/** True when a boolean flag is set and not `=false`. */
export function flagOn(args: ParsedArgs, name: string): boolean {
  const value = flagValue(args, name);
  return value !== undefined && value !== 'false';
}
