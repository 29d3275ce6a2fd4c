/**
 * Repetition: the share of an answer's tokens inside word n-grams that already occurred earlier in it (Gopher's
 * "duplicate n-gram fraction"), and loops: one span repeated several times in a row (a model stuck on a sentence).
 * One pass over the token hashes with a reusable open-addressing table (n-gram hash → last position): a span of
 * period p repeated k times shows as a run of positions whose n-gram last occurred exactly p tokens before.
 */
import type { FilterOptions } from '../../schemas/filter-options';
import { ngramHash, Tokenizer } from './text';
import type { Candidate, Verdict } from './types';

export interface RepetitionMeasure {
  tokens: number;
  /** Share of tokens covered by n-grams seen earlier in the text. */
  duplicateFraction: number;
  /** Longest loop: the span length (period) and how many times it repeats in a row, or null. */
  loop: { period: number; repeats: number; tokens: number } | null;
}

export class RepetitionMeter {
  private readonly tok = new Tokenizer({ operators: true });
  private keys = new Int32Array(1 << 12);
  private pos = new Int32Array(1 << 12);
  private stamp = new Int32Array(1 << 12);
  private gen = 0;

  constructor(
    private readonly n: number,
    private readonly loopRepeats: number,
    private readonly minLoopTokens: number,
  ) {}

  private prepare(tokens: number): void {
    let cap = this.keys.length;
    while (cap < tokens * 2) cap <<= 1;
    if (cap !== this.keys.length) {
      this.keys = new Int32Array(cap);
      this.pos = new Int32Array(cap);
      this.stamp = new Int32Array(cap);
      this.gen = 0;
    }
    this.gen++;
    if (this.gen === 0x7fffffff) {
      this.stamp.fill(0);
      this.gen = 1;
    }
  }

  /** Previous position of n-gram `key`, or -1; records `at` as its latest position. */
  private swap(key: number, at: number): number {
    const mask = this.keys.length - 1;
    let slot = key & mask;
    while (this.stamp[slot] === this.gen) {
      if (this.keys[slot] === key) {
        const prev = this.pos[slot]!;
        this.pos[slot] = at;
        return prev;
      }
      slot = (slot + 1) & mask;
    }
    this.stamp[slot] = this.gen;
    this.keys[slot] = key;
    this.pos[slot] = at;
    return -1;
  }

  measure(text: string): RepetitionMeasure {
    const t = this.tok.run(text);
    const len = t.length;
    const n = Math.min(this.n, len);
    if (len < 2 || n < 1) return { tokens: len, duplicateFraction: 0, loop: null };
    this.prepare(len);
    let covered = 0;
    let coveredTo = 0; // tokens [.., coveredTo) already counted
    let runPeriod = 0;
    let runLen = 0;
    let best: RepetitionMeasure['loop'] = null;
    for (let i = 0; i + n <= len; i++) {
      const prev = this.swap(ngramHash(t.hashes, i, n), i);
      if (prev >= 0) {
        const from = Math.max(i, coveredTo);
        covered += i + n - from;
        coveredTo = i + n;
        const period = i - prev;
        if (period === runPeriod) runLen++;
        else {
          runPeriod = period;
          runLen = 1;
        }
        // runLen consecutive n-grams equal to the ones `period` earlier: the span repeats over runLen + n - 1 + period tokens.
        const loopTokens = runLen + n - 1 + period;
        const repeats = Math.floor(loopTokens / period);
        if (repeats >= this.loopRepeats && loopTokens >= this.minLoopTokens && (!best || loopTokens > best.tokens)) {
          best = { period, repeats, tokens: loopTokens };
        }
      } else {
        runPeriod = 0;
        runLen = 0;
      }
    }
    return { tokens: len, duplicateFraction: covered / len, loop: best };
  }
}

export class RepetitionFilter {
  private readonly meter: RepetitionMeter;

  constructor(private readonly opts: FilterOptions['repetition']) {
    this.meter = new RepetitionMeter(opts.ngram, opts.loopRepeats, opts.minLoopTokens);
  }

  check(c: Candidate): Verdict {
    if (!this.opts.enabled) return null;
    const m = this.meter.measure(c.reasoning ? `${c.reasoning}\n${c.summary}` : c.summary);
    if (m.loop) {
      return {
        reason: 'loop',
        detail: `a ${m.loop.period}-token span repeated ${m.loop.repeats}× in a row (${m.loop.tokens} tokens)`,
      };
    }
    if (m.duplicateFraction > this.opts.maxDuplicateFraction) {
      return {
        reason: 'repetition',
        detail: `${(m.duplicateFraction * 100).toFixed(0)}% of ${m.tokens} tokens in repeated ${this.opts.ngram}-grams > ${(this.opts.maxDuplicateFraction * 100).toFixed(0)}%`,
      };
    }
    return null;
  }
}
