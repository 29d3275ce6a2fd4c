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
    throw new RangeError(`gate policy needs minImprovement ≥ 0, maxRegression ≥ 0, z ≥ 0; got ${JSON.stringify(policy)}`);
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
    record({ benchmark: policy.primary, check: 'present', pass: false }, `${policy.primary}: primary benchmark has no ${!pc ? 'candidate' : 'baseline'} score`);
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
        { benchmark: policy.primary, check: 'primary_significance', pass: d > need - SLACK && d > 0, delta: d, threshold: need },
        `${policy.primary}: improvement ${signed(d)} vs ${policy.z} × s.e. ${(se * 100).toFixed(2)} pts = ${signed(need)}${se === 0 ? ' (no standard error: needs Δ > 0)' : ''}`,
      );
    }
  }

  for (const name of Object.keys(baseline).sort()) {
    const b = baseline[name]!;
    const c = candidate[name];
    if (!c) {
      if (name !== policy.primary) record({ benchmark: name, check: 'present', pass: false }, `${name}: candidate was not scored on it`);
      continue;
    }
    const d = c.mean - b.mean;
    record({ benchmark: name, check: 'no_regression', pass: d >= -eps - SLACK, delta: d, threshold: -eps }, `${name}: ${pct(b.mean)} → ${pct(c.mean)} (${signed(d)}), may drop at most ${(eps * 100).toFixed(2)} pts`);
  }

  const promote = checks.length > 0 && checks.every((c) => c.pass);
  reasons.unshift(promote ? 'promote: every check passed' : `keep the current model: ${checks.filter((c) => !c.pass).length} check(s) failed`);
  return { promote, reasons, checks };
}

/** A model's pass@1 per benchmark, from the evaluate activity's result (`benchmarks`, else the primary `scores`). */
export function scoresByBenchmark(
  result: { benchmark: string; scores: { name: string; pass1: GateScore }[]; benchmarks?: { name: string; scores: { name: string; pass1: GateScore }[] }[] },
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
