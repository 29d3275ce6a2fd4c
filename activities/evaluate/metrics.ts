/**
 * Evaluation metrics as DeepSeek-R1 reports them. Pure functions, no I/O.
 *
 * Inputs are per-item lists of samples: R1 draws k samples per item (temperature 0.6, top-p 0.95) and reports
 *
 *   pass@1   the fraction of correct samples per item, averaged over items (`passAt1`);
 *   cons@k   majority vote: the most frequent extracted answer among the k samples is the item's answer
 *            (`consAtK`; ties and missing answers below);
 *   pass@k   the unbiased estimator of Chen et al. 2021 ("Evaluating Large Language Models Trained on Code"):
 *            with n samples of which c are correct, pass@k = 1 - C(n-c, k) / C(n, k), computed in the numerically
 *            stable product form 1 - Π_{i=n-c+1}^{n} (1 - k/i) (`passAtKUnbiased`).
 *
 * Every estimate is a mean over items with the standard error of that mean (sample standard deviation of the
 * per-item values / √items): the uncertainty from WHICH items the benchmark happens to contain, the number to put as
 * an error bar when comparing two models on the same items. Samples within an item are not independent draws of
 * items, so they are never counted as observations.
 */

export interface Estimate {
  mean: number;
  stderr: number;
}

/** pass@1 averaged over k samples per item, with the standard error of the mean across items. */
export function passAt1(correct: boolean[][]): Estimate {
  const perItem = correct.map((c) => (c.length ? c.filter(Boolean).length / c.length : 0));
  return meanWithStderr(perItem);
}

export function meanWithStderr(values: number[]): Estimate {
  const n = values.length;
  if (!n) return { mean: 0, stderr: 0 };
  const mean = values.reduce((s, v) => s + v, 0) / n;
  if (n < 2) return { mean, stderr: 0 };
  const variance = values.reduce((s, v) => s + (v - mean) ** 2, 0) / (n - 1);
  return { mean, stderr: Math.sqrt(variance / n) };
}

/* ------------------------------------------------------------------------------------------------------------ */
/* pass@k                                                                                                         */
/* ------------------------------------------------------------------------------------------------------------ */

/**
 * Unbiased pass@k of ONE item from n samples with c correct (Chen et al. 2021, Fig. 3):
 * 1 - C(n-c, k)/C(n, k) = 1 - Π_{i=n-c+1}^{n} (1 - k/i). Exactly 1 when n - c < k (every k-subset holds a correct
 * sample). Requires 1 ≤ k ≤ n and 0 ≤ c ≤ n.
 */
export function passAtKUnbiased(n: number, c: number, k: number): number {
  if (!Number.isInteger(n) || !Number.isInteger(c) || !Number.isInteger(k))
    throw new RangeError(`pass@k needs integers, got n=${n} c=${c} k=${k}`);
  if (k < 1 || k > n) throw new RangeError(`pass@k needs 1 ≤ k ≤ n, got k=${k} n=${n}`);
  if (c < 0 || c > n) throw new RangeError(`pass@k needs 0 ≤ c ≤ n, got c=${c} n=${n}`);
  if (n - c < k) return 1;
  let prod = 1;
  for (let i = n - c + 1; i <= n; i++) prod *= 1 - k / i;
  return 1 - prod;
}

/**
 * pass@k over items: the unbiased per-item estimate averaged across items, with the standard error across items.
 * Every item needs at least k samples (a RangeError names the first that has fewer).
 */
export function passAtK(correct: boolean[][], k: number): Estimate {
  const perItem = correct.map((c, idx) => {
    if (c.length < k) throw new RangeError(`pass@${k}: item ${idx} has only ${c.length} samples`);
    return passAtKUnbiased(c.length, c.filter(Boolean).length, k);
  });
  return meanWithStderr(perItem);
}

/** The k values worth reporting for n samples per item: 1, the powers of two below n, and n itself. */
export function defaultPassKs(n: number): number[] {
  const ks: number[] = [];
  for (let k = 1; k < n; k *= 2) ks.push(k);
  if (n >= 1) ks.push(n);
  return ks;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* cons@k (majority vote)                                                                                         */
/* ------------------------------------------------------------------------------------------------------------ */

/** One sample as the vote sees it: its extracted answer as a canonical key (null: no answer) and its verdict. */
export interface Vote {
  answer: string | null;
  correct: boolean;
}

/**
 * How a tie for the most votes is settled:
 *  - 'fractional' (default): the item scores the fraction of the tied answers that are correct — the expected score
 *    of breaking the tie uniformly at random, with no randomness (1 of 2 tied answers correct → 0.5);
 *  - 'first': the tied answer whose first vote came earliest (lowest sample index) wins — what a deployed
 *    self-consistency loop that keeps the first answer it saw would do.
 */
export type TieRule = 'fractional' | 'first';

/**
 * Majority-vote score of one item. Samples vote with their `answer` key: keys must already be canonical (equal
 * answers written differently, 1/2 and 0.5, must map to the same key; see the evaluate activity). Samples with no
 * answer (null) do not vote; an item where no sample answered scores 0. A group of equal keys is as correct as its
 * first sample (samples with the same key share a verdict).
 */
export function majorityVote(votes: Vote[], ties: TieRule = 'fractional'): number {
  const groups = new Map<string, { count: number; first: number; correct: boolean }>();
  votes.forEach((v, i) => {
    if (v.answer === null) return;
    const g = groups.get(v.answer);
    if (g) g.count += 1;
    else groups.set(v.answer, { count: 1, first: i, correct: v.correct });
  });
  if (!groups.size) return 0;
  const top = Math.max(...[...groups.values()].map((g) => g.count));
  const tied = [...groups.values()].filter((g) => g.count === top);
  if (ties === 'first') return tied.reduce((a, b) => (b.first < a.first ? b : a)).correct ? 1 : 0;
  return tied.filter((g) => g.correct).length / tied.length;
}

/** cons@k over items (k = the samples each item has): majority-vote score averaged over items, ± s.e. */
export function consAtK(votes: Vote[][], ties: TieRule = 'fractional'): Estimate {
  return meanWithStderr(votes.map((v) => majorityVote(v, ties)));
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Answer lengths                                                                                                 */
/* ------------------------------------------------------------------------------------------------------------ */

export interface LengthStats {
  count: number;
  mean: number;
  /** Standard error of the mean (over samples). */
  stderr: number;
  median: number;
  p90: number;
  min: number;
  max: number;
}

/**
 * The q-quantile (0 ≤ q ≤ 1) by linear interpolation between the closest ranks (Hyndman & Fan type 7, numpy's and
 * R's default): position h = (n-1)·q in the sorted values, result x[⌊h⌋] + (h-⌊h⌋)·(x[⌊h⌋+1] - x[⌊h⌋]).
 */
export function quantile(values: readonly number[], q: number): number {
  if (!values.length) return 0;
  const x = [...values].sort((a, b) => a - b);
  const h = (x.length - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.min(lo + 1, x.length - 1);
  return x[lo]! + (h - lo) * (x[hi]! - x[lo]!);
}

/** Length statistics (characters, or any other unit) of a list of answers. */
export function lengthStats(lengths: readonly number[]): LengthStats {
  if (!lengths.length) return { count: 0, mean: 0, stderr: 0, median: 0, p90: 0, min: 0, max: 0 };
  const { mean, stderr } = meanWithStderr([...lengths]);
  let min = Infinity;
  let max = -Infinity;
  for (const v of lengths) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return { count: lengths.length, mean, stderr, median: quantile(lengths, 0.5), p90: quantile(lengths, 0.9), min, max };
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Outcomes: correct, incorrect, no answer found                                                                  */
/* ------------------------------------------------------------------------------------------------------------ */

/**
 * Samples by outcome: `noAnswer` has no answer the grader could find (no \boxed{}, stopped inside <think>, an empty
 * final answer, a prompt the model could not read), `incorrect` a found answer that is wrong. pass@1 alone cannot tell
 * a model that gets the arithmetic wrong from one that never states an answer in the expected format.
 */
export interface Outcomes {
  correct: number;
  incorrect: number;
  noAnswer: number;
}

/** Outcome counts of samples as the evaluate activity records them (answer: the extracted answer, null when none). */
export function outcomeCounts(samples: Iterable<{ correct: boolean; answer: string | null }>): Outcomes {
  const out: Outcomes = { correct: 0, incorrect: 0, noAnswer: 0 };
  for (const s of samples) {
    if (s.correct) out.correct += 1;
    else if (s.answer === null) out.noAnswer += 1;
    else out.incorrect += 1;
  }
  return out;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* A benchmark's metrics, overall and by difficulty                                                               */
/* ------------------------------------------------------------------------------------------------------------ */

/** One item's samples, as the evaluate activity collects them. */
export interface ItemSamples {
  id: string;
  /** Difficulty bucket (arithmetic: carries; MATH: level). Absent: the item counts only in the overall numbers. */
  difficulty?: number;
  samples: { correct: boolean; answer: string | null; chars: number; truncated?: boolean }[];
}

export interface SliceMetrics {
  items: number;
  samples: number;
  /** Samples per item (the smallest, when items differ). */
  k: number;
  pass1: Estimate;
  /** Unbiased pass@k for each reported k, keyed by k. */
  passAtK: Record<string, Estimate>;
  /** Majority vote over all the item's samples (k = `k`), ties counted fractionally. */
  consAtK: Estimate;
  answerChars: LengthStats;
  truncated: number;
  outcomes: Outcomes;
}

export interface BenchmarkMetrics extends SliceMetrics {
  /** The same metrics per difficulty value (keys are the difficulty as a string, in ascending order). */
  byDifficulty: Record<string, SliceMetrics>;
}

function slice(items: ItemSamples[], ks: number[] | undefined, ties: TieRule): SliceMetrics {
  const correct = items.map((it) => it.samples.map((s) => s.correct));
  const k = items.length ? Math.min(...items.map((it) => it.samples.length)) : 0;
  const passKs = (ks ?? defaultPassKs(k)).filter((x) => x >= 1 && x <= k);
  const lengths = items.flatMap((it) => it.samples.map((s) => s.chars));
  return {
    items: items.length,
    samples: lengths.length,
    k,
    pass1: passAt1(correct),
    passAtK: Object.fromEntries(passKs.map((x) => [String(x), passAtK(correct, x)])),
    consAtK: consAtK(
      items.map((it) => it.samples.map((s) => ({ answer: s.answer, correct: s.correct }))),
      ties,
    ),
    answerChars: lengthStats(lengths),
    truncated: items.reduce((n, it) => n + it.samples.filter((s) => s.truncated).length, 0),
    outcomes: outcomeCounts(items.flatMap((it) => it.samples)),
  };
}

/** All of a benchmark's metrics for one model, overall and by difficulty. `ks`: the pass@k to report (default 1, 2, 4…, k). */
export function benchmarkMetrics(items: ItemSamples[], opts: { ks?: number[]; ties?: TieRule } = {}): BenchmarkMetrics {
  const ties = opts.ties ?? 'fractional';
  const byDiff = new Map<number, ItemSamples[]>();
  for (const it of items) {
    if (it.difficulty === undefined || it.difficulty === null || !Number.isFinite(it.difficulty)) continue;
    const list = byDiff.get(it.difficulty) ?? [];
    list.push(it);
    byDiff.set(it.difficulty, list);
  }
  const byDifficulty = Object.fromEntries(
    [...byDiff.entries()].sort(([a], [b]) => a - b).map(([d, list]) => [String(d), slice(list, opts.ks, ties)]),
  );
  return { ...slice(items, opts.ks, ties), byDifficulty };
}
