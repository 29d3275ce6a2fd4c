import type { Context } from '@temporalio/activity';

/**
 * The project's own metrics, recorded through the SDK's metric meter so they are exported with the runtime's
 * (Prometheus on the worker's DISTILLERY_METRICS_ADDRESS). Outside an activity (CLI, bench) they are no-ops.
 */
export function recordSamples(
  ctx: Context | undefined,
  n: number,
  tokens: { prompt: number; completion: number },
  teacher: string,
): void {
  if (!ctx || !n) return;
  const m = ctx.metricMeter;
  m.createCounter('distillery_samples_generated', 'samples', 'teacher samples written').add(n, { teacher });
  m.createCounter('distillery_teacher_tokens', 'tokens', 'tokens used by the teacher').add(tokens.prompt, {
    teacher,
    kind: 'prompt',
  });
  m.createCounter('distillery_teacher_tokens', 'tokens', 'tokens used by the teacher').add(tokens.completion, {
    teacher,
    kind: 'completion',
  });
}

export function recordVerdicts(ctx: Context | undefined, accepted: number, rejected: number): void {
  if (!ctx) return;
  const c = ctx.metricMeter.createCounter(
    'distillery_verified_samples',
    'samples',
    'samples verified by rejection sampling',
  );
  c.add(accepted, { verdict: 'accepted' });
  c.add(rejected, { verdict: 'rejected' });
  if (accepted + rejected)
    ctx.metricMeter
      .createGauge('distillery_acceptance_rate', 'float', 'ratio', 'accepted / verified, last verify stage')
      .set(accepted / (accepted + rejected));
}

export function recordCost(ctx: Context | undefined, usd: number, teacher: string): void {
  if (ctx && usd > 0)
    ctx.metricMeter
      .createCounter('distillery_teacher_cost_microusd', 'microusd', 'teacher spend')
      .add(Math.round(usd * 1e6), { teacher });
}

/** Wraps a stage's activity so its duration lands in distillery_stage_duration_seconds{stage}. */
export async function timedStage<T>(ctx: Context | undefined, stage: string, fn: () => Promise<T>): Promise<T> {
  const started = Date.now();
  try {
    return await fn();
  } finally {
    ctx?.metricMeter
      .createHistogram('distillery_stage_duration_seconds', 'float', 's', 'wall time of one stage activity')
      .record((Date.now() - started) / 1000, { stage });
  }
}
