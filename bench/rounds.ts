/**
 * What every benchmark here shares: rounds in ABBA order (A B, B A, A B, …) so that a drift of the machine (another
 * process, thermal state, caches) falls on both sides alike, medians over rounds, and the raw rounds printed.
 */

export type SideName = 'A' | 'B';

/** The order of the two sides in round `round` (1-based): odd rounds A then B, even rounds B then A. */
export function abbaOrder(round: number): [SideName, SideName] {
  if (!Number.isInteger(round) || round < 1) throw new RangeError(`round must be a positive integer, got ${round}`);
  return round % 2 === 1 ? ['A', 'B'] : ['B', 'A'];
}

export function median(xs: readonly number[]): number {
  if (!xs.length) throw new RangeError('median of no values');
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export interface Round<T> {
  round: number;
  order: [SideName, SideName];
  a: T;
  b: T;
}

/**
 * Runs `rounds` rounds of the two sides in ABBA order, one after the other (never overlapping), and hands each
 * finished round to `onRound` (to print it at once, so a long benchmark shows its raw rounds as it goes).
 */
export async function runAbba<T>(
  rounds: number,
  sides: { A: (round: number) => Promise<T>; B: (round: number) => Promise<T> },
  onRound?: (r: Round<T>) => void,
): Promise<Round<T>[]> {
  if (!Number.isInteger(rounds) || rounds < 1) throw new RangeError(`rounds must be a positive integer, got ${rounds}`);
  const out: Round<T>[] = [];
  for (let round = 1; round <= rounds; round++) {
    const order = abbaOrder(round);
    const got: Partial<Record<SideName, T>> = {};
    for (const side of order) got[side] = await sides[side](round);
    const r = { round, order, a: got.A as T, b: got.B as T };
    out.push(r);
    onRound?.(r);
  }
  return out;
}

/** A positive integer from the environment (or the fallback); anything else is a clear error, not a silent default. */
export function envInt(name: string, fallback: number, env: NodeJS.ProcessEnv = process.env): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < 1)
    throw new RangeError(`${name} must be a positive integer, got ${JSON.stringify(raw)}`);
  return v;
}

/** A non-negative number from the environment (or the fallback). */
export function envNumber(name: string, fallback: number, env: NodeJS.ProcessEnv = process.env): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const v = Number(raw);
  if (!Number.isFinite(v) || v < 0)
    throw new RangeError(`${name} must be a non-negative number, got ${JSON.stringify(raw)}`);
  return v;
}

/** Seconds with 3 decimals, joined: "1.234 1.301 1.198". */
export function secondsList(xs: readonly number[]): string {
  return xs.map((x) => x.toFixed(3)).join(' ');
}
