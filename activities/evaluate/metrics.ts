/** Evaluation metrics as R1 reports them. Inputs are per-item lists of sample correctness (and answers for cons@k). */

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
