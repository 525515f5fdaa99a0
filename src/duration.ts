const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;

/** True for the duration strings playbooks use: `250ms`, `30s`, `5m`, `1h`. */
export function isDuration(value: string): boolean {
  return DURATION.test(value);
}

/** Milliseconds of a duration string such as `30s`; throws on anything else. */
export function toMs(value: string): number {
  const match = DURATION.exec(value);
  if (!match) throw new Error(`not a duration: ${JSON.stringify(value)} (use e.g. 500ms, 30s, 5m, 1h)`);
  return Math.round(Number(match[1]) * UNITS[match[2]!]!);
}

/** The shortest exact duration string for a number of milliseconds. */
export function fromMs(ms: number): string {
  for (const unit of ['h', 'm', 's'] as const) {
    if (ms >= UNITS[unit]! && ms % UNITS[unit]! === 0) return `${ms / UNITS[unit]!}${unit}`;
  }
  return `${ms}ms`;
}
