/** A teacher's price in USD per 1M tokens (the run spec's `teacher.pricing`). */
export interface TeacherPricing {
  inputPerMTokens: number;
  outputPerMTokens: number;
}

/** Spend so far in USD from token counts and the teacher's price per 1M tokens (0 when no price is given). */
export function costUSD(
  tokens: { promptTokens: number; completionTokens: number },
  pricing: TeacherPricing | undefined,
): number {
  if (!pricing) return 0;
  return (tokens.promptTokens * pricing.inputPerMTokens + tokens.completionTokens * pricing.outputPerMTokens) / 1e6;
}

/**
 * A shard's share of the budget when it starts: what is left (after the finished shards' cost and the shares still
 * held by shards in flight) split evenly over the shards not yet started, this one included. A shard that spends less
 * than its share leaves the rest to the shards after it.
 */
export function budgetShareUSD(a: {
  budgetUSD: number;
  spentUSD: number;
  heldUSD: number;
  shardCount: number;
  shardIndex: number;
}): number {
  return Math.max(0, (a.budgetUSD - a.spentUSD - a.heldUSD) / Math.max(1, a.shardCount - a.shardIndex));
}
