/**
 * Difficulty: keep prompts whose pass rate in rejection sampling lies in [minPassRate, maxPassRate]. The verify stage
 * writes one row per prompt to verify/pass-rates.jsonl ({promptId, samples, correct, passRate}). Prompts every sample
 * solved teach little; prompts solved once in many samples may be lucky guesses. Off (everything kept) when the
 * range is [0, 1] or no pass rates are given.
 */
import type { ArtifactRef } from '../../schemas/artifact';
import { readJsonl, verifyRef } from '../artifacts/store';
import type { FilterOptions } from '../../schemas/filter-options';
import type { Candidate, Verdict } from './types';

export interface PassRateRow {
  promptId: string;
  samples: number;
  correct: number;
  passRate: number;
}

export class DifficultyFilter {
  /** Samples whose prompt had no pass-rate row (kept, and counted in the card). */
  unknown = 0;

  constructor(
    private readonly rates: Map<string, number> | undefined,
    private readonly opts: FilterOptions['difficulty'],
  ) {}

  get enabled(): boolean {
    return !!this.rates && (this.opts.minPassRate > 0 || this.opts.maxPassRate < 1);
  }

  check(c: Candidate): Verdict {
    if (!this.enabled) return null;
    const rate = this.rates!.get(c.sample.promptId);
    if (rate === undefined) {
      this.unknown += 1;
      return null;
    }
    if (rate < this.opts.minPassRate)
      return { reason: 'too_hard', detail: `pass rate ${rate.toFixed(3)} < ${this.opts.minPassRate}` };
    if (rate > this.opts.maxPassRate)
      return { reason: 'too_easy', detail: `pass rate ${rate.toFixed(3)} > ${this.opts.maxPassRate}` };
    return null;
  }
}

/** promptId → pass rate, from the verify stage's pass-rates.jsonl (checked against its reference when given one). */
export async function loadPassRates(ref: ArtifactRef | string): Promise<Map<string, number>> {
  if (typeof ref !== 'string') await verifyRef(ref);
  const m = new Map<string, number>();
  for await (const r of readJsonl<PassRateRow>(ref)) {
    const rate = typeof r.passRate === 'number' ? r.passRate : r.samples ? r.correct / r.samples : NaN;
    if (typeof r.promptId === 'string' && Number.isFinite(rate)) m.set(r.promptId, rate);
  }
  return m;
}
