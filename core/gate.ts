/**
 * The promotion gate: does this run's student replace the model we ship? (The 'promoted' pointer the next run
 * starts from is written by activities/evaluate/promoted.ts.)
 *
 * Pure module, no I/O and no Node imports: a workflow may import it and call `decideGate` itself (the same answer
 * on replay). A candidate promotes when
 *
 *   1. on the PRIMARY benchmark it beats the baseline by at least δ (`minImprovement`, absolute, e.g. 0.02 = 2
 *      points of pass@1) and, when `z` is set, by more than z standard errors of the difference,
 *      s.e.(Δ) = √(s.e.(baseline)² + s.e.(candidate)²) (independent-samples form: conservative when both were scored
 *      on the same items, whose errors are positively correlated);
 *   2. on EVERY benchmark the baseline was scored on (primary included) it loses at most ε (`maxRegression`); a
 *      benchmark the candidate was not scored on fails the gate (fail closed: no score, no promotion).
 *
 * Comparisons allow 1e-9 of floating-point slack (0.3 − 0.2 is 0.09999999999999998, and must pass δ = 0.1).
 * `reasons` has one line per check, passed or failed, so the decision can be read in the report as it was taken.
 *
 * Against the promoted model (`decidePromotion`). The baseline is this run's own untrained student, so passing the
 * checks above says the fine-tune helped, not that the candidate is better than what the line of runs ships. When a
 * model is promoted already (the incumbent), the evaluate stage scores it on the same items, with the same k, seed
 * and sampling, as another model of the same call, and the candidate must ALSO be at least as good as it:
 *
 *   3. on the primary benchmark: candidate ≥ incumbent (δ = 0 and no z test: a tie promotes, so a line whose runs
 *      have converged still ships fresh students, but a worse point estimate never does; δ and z stay the bar
 *      against the baseline, where the candidate must show that training helped);
 *   4. on every benchmark the incumbent was scored on: the candidate loses at most ε to it (as in 2).
 *
 * An incumbent that could not be scored (its files are gone, or the pointer does not say how to serve it) fails
 * the gate (fail closed): the candidate was not compared with what ships. With no incumbent (nothing promoted yet)
 * only 1 and 2 apply. Checks against the incumbent carry `against: 'promoted'` and their reasons say "vs promoted".
 */

export interface GateScore {
  mean: number;
  stderr: number;
}

export interface GatePolicy {
  /** The benchmark that must improve. */
  primary: string;
  /** δ: least absolute improvement on the primary benchmark (default 0). */
  minImprovement?: number;
  /** When set, the improvement must also exceed z standard errors of the difference (e.g. 1.96). */
  z?: number;
  /** ε: largest absolute drop allowed on any benchmark (default 0.01). */
  maxRegression?: number;
}

export interface GateCheck {
  benchmark: string;
  check: 'primary_improvement' | 'primary_significance' | 'no_regression' | 'present';
  pass: boolean;
  /** The model the candidate was compared with: this run's baseline (the default) or the promoted model. */
  against?: 'baseline' | 'promoted';
  delta?: number;
  threshold?: number;
}

export interface GateDecision {
  promote: boolean;
  reasons: string[];
  checks: GateCheck[];
}

export interface GateInput {
  policy: GatePolicy;
  /** Scores of the model to beat (this run's baseline, or the currently promoted model), by benchmark. */
  baseline: Record<string, GateScore>;
  /** Scores of the candidate, by benchmark. */
  candidate: Record<string, GateScore>;
}

const SLACK = 1e-9;
const pct = (x: number) => `${(x * 100).toFixed(2)}%`;
const signed = (x: number) => `${x >= 0 ? '+' : '−'}${(Math.abs(x) * 100).toFixed(2)} pts`;

export function decideGate(input: GateInput): GateDecision {
  const { policy, baseline, candidate } = input;
  const delta = policy.minImprovement ?? 0;
  const eps = policy.maxRegression ?? 0.01;
  if (!(delta >= 0) || !(eps >= 0) || (policy.z !== undefined && !(policy.z >= 0))) {
    throw new RangeError(
      `gate policy needs minImprovement ≥ 0, maxRegression ≥ 0, z ≥ 0; got ${JSON.stringify(policy)}`,
    );
  }
  const checks: GateCheck[] = [];
  const reasons: string[] = [];
  const record = (c: GateCheck, why: string) => {
    checks.push(c);
    reasons.push(`${c.pass ? 'PASS' : 'FAIL'} ${why}`);
  };

  const pb = baseline[policy.primary];
  const pc = candidate[policy.primary];
  if (!pb || !pc) {
    record(
      { benchmark: policy.primary, check: 'present', pass: false },
      `${policy.primary}: primary benchmark has no ${!pc ? 'candidate' : 'baseline'} score`,
    );
  } else {
    const d = pc.mean - pb.mean;
    record(
      { benchmark: policy.primary, check: 'primary_improvement', pass: d >= delta - SLACK, delta: d, threshold: delta },
      `${policy.primary}: ${pct(pb.mean)} → ${pct(pc.mean)} (${signed(d)}), needs ≥ ${signed(delta)}`,
    );
    if (policy.z !== undefined) {
      const se = Math.sqrt(pb.stderr ** 2 + pc.stderr ** 2);
      const need = policy.z * se;
      record(
        {
          benchmark: policy.primary,
          check: 'primary_significance',
          pass: d > need - SLACK && d > 0,
          delta: d,
          threshold: need,
        },
        `${policy.primary}: improvement ${signed(d)} vs ${policy.z} × s.e. ${(se * 100).toFixed(2)} pts = ${signed(need)}${se === 0 ? ' (no standard error: needs Δ > 0)' : ''}`,
      );
    }
  }

  for (const name of Object.keys(baseline).sort()) {
    const b = baseline[name]!;
    const c = candidate[name];
    if (!c) {
      if (name !== policy.primary)
        record({ benchmark: name, check: 'present', pass: false }, `${name}: candidate was not scored on it`);
      continue;
    }
    const d = c.mean - b.mean;
    record(
      { benchmark: name, check: 'no_regression', pass: d >= -eps - SLACK, delta: d, threshold: -eps },
      `${name}: ${pct(b.mean)} → ${pct(c.mean)} (${signed(d)}), may drop at most ${(eps * 100).toFixed(2)} pts`,
    );
  }

  const promote = checks.length > 0 && checks.every((c) => c.pass);
  reasons.unshift(
    promote
      ? 'promote: every check passed'
      : `keep the current model: ${checks.filter((c) => !c.pass).length} check(s) failed`,
  );
  return { promote, reasons, checks };
}

/** A model's pass@1 per benchmark, from the evaluate activity's result (`benchmarks`, else the primary `scores`). */
export function scoresByBenchmark(
  result: {
    benchmark: string;
    scores: { name: string; pass1: GateScore }[];
    benchmarks?: { name: string; scores: { name: string; pass1: GateScore }[] }[];
  },
  model: string,
): Record<string, GateScore> {
  const benches = result.benchmarks ?? [{ name: result.benchmark, scores: result.scores }];
  const out: Record<string, GateScore> = {};
  for (const b of benches) {
    const s = b.scores.find((x) => x.name === model);
    if (s) out[b.name] = { mean: s.pass1.mean, stderr: s.pass1.stderr };
  }
  return out;
}

/** The promoted model as the evaluate stage saw it: scored on this run's items, or not scorable (and why). */
export type Incumbent = { runId: string; scores: Record<string, GateScore> } | { runId: string; unavailable: string };

export interface PromotionInput extends GateInput {
  /** The currently promoted model; null or absent when nothing is promoted yet. */
  incumbent?: Incumbent | null;
}

/** The gate against the baseline (checks 1–2) and, when a model is promoted already, against it (3–4). */
export function decidePromotion(input: PromotionInput): GateDecision {
  const vsBaseline = decideGate(input);
  const { incumbent, policy } = input;
  if (!incumbent) return vsBaseline;
  const checks = [...vsBaseline.checks];
  const reasons = vsBaseline.reasons.slice(1);
  if ('unavailable' in incumbent) {
    checks.push({ benchmark: policy.primary, check: 'present', pass: false, against: 'promoted' });
    reasons.push(
      `FAIL vs promoted ${incumbent.runId}: it could not be scored on these items (${incumbent.unavailable})`,
    );
  } else {
    const vsPromoted = decideGate({
      policy: { primary: policy.primary, minImprovement: 0, maxRegression: policy.maxRegression },
      baseline: incumbent.scores,
      candidate: input.candidate,
    });
    checks.push(...vsPromoted.checks.map((c) => ({ ...c, against: 'promoted' as const })));
    reasons.push(
      ...vsPromoted.reasons.slice(1).map((r) => r.replace(/^(PASS|FAIL) /, `$1 vs promoted ${incumbent.runId}: `)),
    );
  }
  const promote = checks.every((c) => c.pass);
  const failed = checks.filter((c) => !c.pass).length;
  return {
    promote,
    checks,
    reasons: [
      promote ? 'promote: every check passed' : `keep the current model: ${failed} check(s) failed`,
      ...reasons,
    ],
  };
}
